package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"qledger/api/client"
	"qledger/explorer"
)

// explorerCmd serves the chain explorer: the embedded pages and a local
// read-only proxy that holds the caller's (an auditor's) certificate.
func (a *app) explorerCmd() *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "explorer [--listen 127.0.0.1:8088]",
		Short: "serve the chain explorer: web pages and a local read-only proxy holding your certificate",
		Long: `Serve the chain explorer on a loopback address. Browsers hold no client
certificates, so the explorer is a local proxy (like kubectl proxy): it
passes the pages' GET requests for the API's read endpoints to --addr with
your certificate (--cert, --cert-key; an auditor's is enough) and refuses
everything else. Note keys reach the page only after their endorsement
verifies against --ca. Open the printed URL in a browser.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error { return a.explorer(listen) },
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8088", "loopback address to serve the explorer on")
	return a.clientGroup(cmd)
}

func (a *app) explorer(listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
		return usageErrorf("explorer: --listen must be a loopback address (127.0.0.1:PORT), not %q", listen)
	}
	creds, err := a.client.tls.credentials()
	if err != nil {
		return err
	}
	cfg := explorer.Config{Upstream: withScheme(a.client.addr, "http")}
	var verify func(client.NoteKey) error
	if creds != nil {
		cfg.Upstream = withScheme(a.client.addr, "https")
		cfg.Transport = &http.Transport{TLSClientConfig: creds.ClientConfig(nil)}
		verify = func(k client.NoteKey) error { _, err := client.VerifyNoteKey(k, creds.Pool()); return err }
	}
	ex, err := explorer.New(cfg, verify)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: ex, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(a.stdout, "explorer for %s on http://%s/ (read-only; Ctrl-C stops it)\n", cfg.Upstream, ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
