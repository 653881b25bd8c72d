package kme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	certs "qledger/pki"
	"qledger/qkd"
)

// ServiceConfig says where a key manager service listens and whom it
// serves.
type ServiceConfig struct {
	// Addr is the mutual-TLS listen address (host:port; port 0 picks one).
	Addr string
	// TLSDir holds ca.pem and ca-key.pem; a throwaway CA is created there
	// if absent.
	TLSDir string
	// Masters are the client SAE IDs; each gets a pool with Gateway and a
	// client certificate in TLSDir (<sae>.pem, <sae>-key.pem).
	Masters []string
	// Gateway is the slave SAE of every pool; its client certificate is
	// written to TLSDir (<gateway>.pem, <gateway>-key.pem), so a gateway in
	// another process can use this service.
	Gateway string
	// QKD is the simulated BB84 link that fills every pool.
	QKD qkd.Config
	// Logger; nil discards.
	Logger hclog.Logger
}

// Service is a running key manager: an ETSI GS QKD 014 server on its own
// mutual-TLS listener, its pools filled by the simulated BB84 link. Its
// methods are safe for concurrent use.
type Service struct {
	// KME is the key manager; KME.Local(Gateway) serves the gateway in
	// process.
	KME *Server
	// URL is https://host:port of the listener.
	URL string
	// TLSDir is ServiceConfig.TLSDir.
	TLSDir string
	// Gateway is ServiceConfig.Gateway.
	Gateway string

	srv    *http.Server
	cancel context.CancelFunc
	hosts  []string
	tlsCfg atomic.Pointer[tls.Config]
}

// StartService starts a key manager service. Its pools refill in the
// background until Close or ctx ends.
func StartService(ctx context.Context, c ServiceConfig) (*Service, error) {
	if c.Gateway == "" || len(c.Masters) == 0 {
		return nil, fmt.Errorf("%w: need a gateway SAE ID and at least one client SAE ID", ErrInvalidConfig)
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	ca, err := loadOrCreateCA(c.TLSDir)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return nil, fmt.Errorf("qkd/kme: listen %s: %w", c.Addr, err)
	}
	s, err := newService(ctx, c, ca, ln)
	if err != nil {
		ln.Close()
		return nil, err
	}
	go s.srv.Serve(tls.NewListener(ln, s.srv.TLSConfig))
	return s, nil
}

func loadOrCreateCA(dir string) (*certs.CA, error) {
	ca, err := certs.LoadCA(dir)
	if errors.Is(err, certs.ErrNoCA) {
		if ca, err = certs.NewCA("qledger key manager CA", 365*24*time.Hour); err == nil {
			err = ca.Save(dir)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("qkd/kme: %w", err)
	}
	return ca, nil
}

// newService issues the certificates, creates the pools and starts their
// refills; the caller serves ln.
func newService(ctx context.Context, c ServiceConfig, ca *certs.CA, ln net.Listener) (*Service, error) {
	host, _, _ := net.SplitHostPort(ln.Addr().String())
	kcfg := DefaultConfig()
	kcfg.Logger = c.Logger
	km, err := NewServer(kcfg)
	if err != nil {
		return nil, err
	}
	s := &Service{KME: km, TLSDir: c.TLSDir, Gateway: c.Gateway, URL: "https://" + ln.Addr().String(), hosts: []string{host, "localhost", "127.0.0.1"}}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	for _, sae := range append([]string{c.Gateway}, c.Masters...) {
		cert, err := ca.Issue(certs.Leaf{CommonName: sae, Client: true})
		if err == nil {
			err = cert.Save(c.TLSDir, sae)
		}
		if err != nil {
			return nil, fmt.Errorf("qkd/kme: certificate for %s: %w", sae, err)
		}
	}
	links := make(map[string]*qkd.Link, len(c.Masters))
	for _, m := range c.Masters {
		if _, err := km.AddPair(m, c.Gateway); err != nil {
			return nil, err
		}
		if links[m], err = qkd.NewLink(c.QKD); err != nil {
			return nil, fmt.Errorf("qkd/kme: %w", err)
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	for m, link := range links {
		go s.refill(rctx, c.Logger, m, link)
	}
	s.srv = &http.Server{Handler: km, ReadHeaderTimeout: 5 * time.Second, TLSConfig: &tls.Config{
		MinVersion:         tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return s.tlsCfg.Load(), nil },
	}}
	return s, nil
}

// A service checks each pool every second and, when it holds fewer than
// RefillBelow keys, fills it to at least RefillTo.
const (
	RefillBelow = 16
	RefillTo    = 64
)

func (s *Service) refill(ctx context.Context, logger hclog.Logger, master string, link *qkd.Link) {
	if err := s.KME.Refill(ctx, master, s.Gateway, link, RefillBelow, RefillTo, time.Second); err != nil && !errors.Is(err, context.Canceled) {
		logger.Error("key pool refill stopped", "master", master, "slave", s.Gateway, "error", err)
	}
}

// Reload reads the CA in TLSDir again and issues the key manager a new
// server certificate from it; handshakes from now on use them (SIGHUP).
// On error the old ones stay.
func (s *Service) Reload() error {
	ca, err := certs.LoadCA(s.TLSDir)
	if err != nil {
		return fmt.Errorf("qkd/kme: %w", err)
	}
	cert, err := ca.Issue(certs.Leaf{CommonName: "qledger-kme", Server: true, Hosts: s.hosts})
	if err != nil {
		return fmt.Errorf("qkd/kme: %w", err)
	}
	s.tlsCfg.Store(ServerTLSConfig(cert.TLS, ca.Pool()))
	return nil
}

// Close stops the refills and the listener.
func (s *Service) Close() {
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// WaitKeys waits until master's pool with the gateway holds a key.
func (s *Service) WaitKeys(ctx context.Context, master string) error {
	p, ok := s.KME.Pool(master, s.Gateway)
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownPair, master)
	}
	for p.Stored() == 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("qkd/kme: no key for %s yet: %w", master, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// ClientFor returns a client of the key manager at url that presents
// sae's certificate from tlsDir (<sae>.pem, <sae>-key.pem) and verifies
// the key manager with tlsDir's ca.pem: the files a Service writes.
func ClientFor(url, tlsDir, sae string) (*Client, error) {
	c, _, err := DialSAE(url, filepath.Join(tlsDir, sae+".pem"), filepath.Join(tlsDir, sae+"-key.pem"), filepath.Join(tlsDir, "ca.pem"))
	return c, err
}

// DialSAE returns a client for the key manager at url that presents the
// certificate in certFile, and the SAE ID the certificate names (its
// Common Name). caFile verifies the key manager; empty uses the system
// roots.
func DialSAE(url, certFile, keyFile, caFile string) (*Client, string, error) {
	var roots *x509.CertPool
	if caFile != "" {
		var err error
		if roots, err = certs.LoadPool(caFile); err != nil {
			return nil, "", err
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, "", fmt.Errorf("qkd/kme: SAE certificate %s: %w", certFile, err)
	}
	sae := cert.Leaf.Subject.CommonName
	if err := ValidateSAEID(sae); err != nil {
		return nil, "", fmt.Errorf("qkd/kme: SAE certificate %s: common name: %w", certFile, err)
	}
	c, err := NewClient(url, &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: ClientTLSConfig(cert, roots)}})
	return c, sae, err
}
