package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"

	"qledger/api"
	"qledger/pki"
	"qledger/qkd"
	"qledger/qkd/kme"
)

// keyService is a node's key manager: an ETSI GS QKD 014 server on its own
// mutual-TLS listener, its pools filled by the simulated BB84 link, and the
// gateway's key channel that uses it in process.
type keyService struct {
	KME     *kme.Server
	URL     string
	TLSDir  string
	Channel *api.KeyChannel
	srv     *http.Server
	cancel  context.CancelFunc
}

// keyServiceConfig says where the key manager listens and whom it serves.
type keyServiceConfig struct {
	Addr   string // listen address
	TLSDir string // ca.pem/ca-key.pem; created with a throwaway CA if absent
	// Masters are the client SAE IDs; each gets a pool with Gateway and a
	// client certificate in TLSDir (<sae>.pem, <sae>-key.pem).
	Masters []string
	Gateway string
	QKD     qkd.Config
	Logger  hclog.Logger
}

func startKeyService(ctx context.Context, c keyServiceConfig) (*keyService, error) {
	if c.Gateway == "" || len(c.Masters) == 0 {
		return nil, errors.New("key manager: need a gateway SAE ID and at least one client SAE ID")
	}
	ca, err := pki.LoadCA(c.TLSDir)
	if errors.Is(err, pki.ErrNoCA) {
		if ca, err = pki.NewCA("qledger key manager CA", 365*24*time.Hour); err == nil {
			err = ca.Save(c.TLSDir)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("key manager: %w", err)
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return nil, fmt.Errorf("key manager: listen %s: %w", c.Addr, err)
	}
	host, _, _ := net.SplitHostPort(ln.Addr().String())
	srvCert, err := ca.Issue(pki.Leaf{CommonName: "qledger-kme", Server: true, Hosts: []string{host, "localhost", "127.0.0.1"}})
	if err != nil {
		ln.Close()
		return nil, err
	}
	kcfg := kme.DefaultConfig()
	kcfg.Logger = c.Logger
	km, err := kme.NewServer(kcfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	ks := &keyService{KME: km, TLSDir: c.TLSDir, cancel: cancel, URL: "https://" + ln.Addr().String()}
	for _, m := range c.Masters {
		if _, err := km.AddPair(m, c.Gateway); err != nil {
			cancel()
			ln.Close()
			return nil, err
		}
		cert, err := ca.Issue(pki.Leaf{CommonName: m, Client: true})
		if err == nil {
			err = cert.Save(c.TLSDir, m)
		}
		if err != nil {
			cancel()
			ln.Close()
			return nil, err
		}
		link, err := qkd.NewLink(c.QKD)
		if err != nil {
			cancel()
			ln.Close()
			return nil, err
		}
		go func(m string) {
			if err := km.Refill(rctx, m, c.Gateway, link, 16, 64, time.Second); err != nil && !errors.Is(err, context.Canceled) && c.Logger != nil {
				c.Logger.Error("key pool refill stopped", "master", m, "slave", c.Gateway, "error", err)
			}
		}(m)
	}
	ks.srv = &http.Server{Handler: km, TLSConfig: kme.ServerTLSConfig(srvCert.TLS, ca.Pool()), ReadHeaderTimeout: 5 * time.Second}
	go ks.srv.Serve(tls.NewListener(ln, ks.srv.TLSConfig))
	ks.Channel = &api.KeyChannel{KME: km, GatewaySAE: c.Gateway}
	return ks, nil
}

func (k *keyService) Close() {
	k.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = k.srv.Shutdown(ctx)
}

// kmeClient returns a key manager client that presents sae's certificate
// from tlsDir.
func kmeClient(url, tlsDir, sae string) (*kme.Client, error) {
	pool, err := pki.LoadPool(filepath.Join(tlsDir, "ca.pem"))
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(tlsDir, sae+".pem"), filepath.Join(tlsDir, sae+"-key.pem"))
	if err != nil {
		return nil, fmt.Errorf("certificate of SAE %q in %s: %w", sae, tlsDir, err)
	}
	return kme.NewClient(url, &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: kme.ClientTLSConfig(cert, pool)}})
}

// waitKeys waits until master's pool holds a key.
func (k *keyService) waitKeys(ctx context.Context, master string) error {
	p, ok := k.KME.Pool(master, k.Channel.GatewaySAE)
	if !ok {
		return fmt.Errorf("key manager: no pool for %s", master)
	}
	for p.Stored() == 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("key manager: no key for %s yet: %w", master, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
