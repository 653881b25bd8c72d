package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/pflag"

	"qledger/api"
	"qledger/pki"
	"qledger/qkd"
	"qledger/qkd/kme"
)

// keyService is a node's key manager: an ETSI GS QKD 014 server on its own
// mutual-TLS listener, its pools filled by the simulated BB84 link, and the
// gateway's key channel that uses it in process. The gateway's certificate
// is written to TLSDir too, so a node without a key manager of its own can
// use this one (externalKME).
type keyService struct {
	KME     *kme.Server
	URL     string
	TLSDir  string
	Channel *api.KeyChannel
	srv     *http.Server
	cancel  context.CancelFunc
	hosts   []string
	tlsCfg  atomic.Pointer[tls.Config]
}

// keyServiceConfig says where the key manager listens and whom it serves.
type keyServiceConfig struct {
	Addr   string // listen address
	TLSDir string // ca.pem/ca-key.pem; created with a throwaway CA if absent
	// Masters are the client SAE IDs; each gets a pool with Gateway and a
	// client certificate in TLSDir (<sae>.pem, <sae>-key.pem).
	Masters []string
	// Gateway is the slave SAE of every pool; its client certificate is
	// written to TLSDir (<gateway>.pem, <gateway>-key.pem).
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
	kcfg := kme.DefaultConfig()
	kcfg.Logger = c.Logger
	km, err := kme.NewServer(kcfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	ks := &keyService{KME: km, TLSDir: c.TLSDir, cancel: cancel, URL: "https://" + ln.Addr().String(), hosts: []string{host, "localhost", "127.0.0.1"}}
	if err := ks.Reload(); err != nil {
		cancel()
		ln.Close()
		return nil, err
	}
	for _, sae := range append([]string{c.Gateway}, c.Masters...) {
		cert, err := ca.Issue(pki.Leaf{CommonName: sae, Client: true})
		if err == nil {
			err = cert.Save(c.TLSDir, sae)
		}
		if err != nil {
			cancel()
			ln.Close()
			return nil, err
		}
	}
	for _, m := range c.Masters {
		if _, err := km.AddPair(m, c.Gateway); err != nil {
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
	ks.srv = &http.Server{Handler: km, ReadHeaderTimeout: 5 * time.Second, TLSConfig: &tls.Config{
		MinVersion:         tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return ks.tlsCfg.Load(), nil },
	}}
	go ks.srv.Serve(tls.NewListener(ln, ks.srv.TLSConfig))
	ks.Channel = &api.KeyChannel{KME: km.Local(c.Gateway), GatewaySAE: c.Gateway}
	return ks, nil
}

// Reload reads the CA in TLSDir again and issues the key manager a new
// server certificate from it; handshakes from now on use them (SIGHUP).
// On error the old ones stay.
func (k *keyService) Reload() error {
	ca, err := pki.LoadCA(k.TLSDir)
	if err != nil {
		return fmt.Errorf("key manager: %w", err)
	}
	cert, err := ca.Issue(pki.Leaf{CommonName: "qledger-kme", Server: true, Hosts: k.hosts})
	if err != nil {
		return fmt.Errorf("key manager: %w", err)
	}
	k.tlsCfg.Store(kme.ServerTLSConfig(cert.TLS, ca.Pool()))
	return nil
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
	c, _, err := dialKME(url, filepath.Join(tlsDir, sae+".pem"), filepath.Join(tlsDir, sae+"-key.pem"), filepath.Join(tlsDir, "ca.pem"))
	return c, err
}

// dialKME returns a client for the key manager at url that presents the
// certificate in certFile, and the SAE ID the certificate names (its
// Common Name). caFile verifies the key manager; empty uses the system
// roots.
func dialKME(url, certFile, keyFile, caFile string) (*kme.Client, string, error) {
	var roots *x509.CertPool
	if caFile != "" {
		var err error
		if roots, err = pki.LoadPool(caFile); err != nil {
			return nil, "", err
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, "", fmt.Errorf("SAE certificate %s: %w", certFile, err)
	}
	sae := cert.Leaf.Subject.CommonName
	if err := kme.ValidateSAEID(sae); err != nil {
		return nil, "", fmt.Errorf("SAE certificate %s: common name: %w", certFile, err)
	}
	c, err := kme.NewClient(url, &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: kme.ClientTLSConfig(cert, roots)}})
	return c, sae, err
}

// externalKME points the gateway's key channel at a key manager in another
// process (any ETSI GS QKD 014 KME, such as a QKD device's, or another
// node's --kme-addr) instead of one served by this node.
type externalKME struct {
	URL       string // https://host:port of the key manager; empty: none
	Cert, Key string // the gateway SAE's client certificate and key (PEM)
	CA        string // CA certificate verifying the key manager (PEM)
}

func (e *externalKME) register(fs *pflag.FlagSet) {
	fs.StringVar(&e.URL, "kme-url", "", "run the quantum-keyed channel with the ETSI GS QKD 014 key manager at this https URL instead of serving one (excludes --kme-addr)")
	fs.StringVar(&e.Cert, "kme-cert", "", "with --kme-url: the gateway SAE's client certificate (PEM); its Common Name is the gateway's SAE ID")
	fs.StringVar(&e.Key, "kme-cert-key", "", "with --kme-url: the private key of --kme-cert (PEM)")
	fs.StringVar(&e.CA, "kme-ca", "", "with --kme-url: CA certificate verifying the key manager (PEM; default: the system roots)")
	bindEnv(fs, "kme-url", "QLEDGER_KME_URL")
	bindEnv(fs, "kme-cert", "QLEDGER_KME_CERT")
	bindEnv(fs, "kme-cert-key", "QLEDGER_KME_CERT_KEY")
	bindEnv(fs, "kme-ca", "QLEDGER_KME_CA")
}

// keyChannel returns the gateway's key channel using the key manager at
// e.URL as the SAE of e.Cert, or nil if e.URL is empty. kmeAddr is the
// node's --kme-addr, which excludes an external key manager.
func (e *externalKME) keyChannel(kmeAddr string) (*api.KeyChannel, error) {
	switch {
	case e.URL == "":
		return nil, nil
	case kmeAddr != "":
		return nil, errors.New("key manager: --kme-addr serves one, --kme-url uses another: give one of them")
	case !strings.HasPrefix(e.URL, "https://"):
		return nil, fmt.Errorf("key manager: --kme-url %q: want https:// (the gateway authenticates with its certificate)", e.URL)
	case e.Cert == "" || e.Key == "":
		return nil, errors.New("key manager: --kme-url needs --kme-cert and --kme-cert-key (the gateway SAE's certificate)")
	}
	c, sae, err := dialKME(e.URL, e.Cert, e.Key, e.CA)
	if err != nil {
		return nil, fmt.Errorf("key manager: %w", err)
	}
	return &api.KeyChannel{KME: c, GatewaySAE: sae}, nil
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
