package server

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"qledger/api/client"
	"qledger/cluster"
	"qledger/qkd"
	"qledger/qkd/kme"
	"qledger/qkd/session"
)

func testNodeConfig(t *testing.T) Config {
	c := cluster.DefaultConfig()
	c.DataDir = t.TempDir()
	c.BindAddr, c.GossipBind = "127.0.0.1:0", "127.0.0.1:0"
	c.Bootstrap = true
	c.LoopbackTiming()
	return Config{Cluster: c, APIAddr: "127.0.0.1:0", Logger: hclog.NewNullLogger()}
}

// TestStartServeStop starts one node with a key manager service beside
// it, writes through its API and the quantum-keyed channel, reloads and
// stops it.
func TestStartServeStop(t *testing.T) {
	cfg := testNodeConfig(t)
	qc := qkd.DefaultConfig()
	qc.Qubits = 1 << 16
	cfg.KeyService = &kme.ServiceConfig{Addr: "127.0.0.1:0", Masters: []string{"client"}, Gateway: "gateway", QKD: qc}
	n, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	api := n.Cluster().Info().APIAddr
	if !strings.HasPrefix(api, "http://127.0.0.1:") {
		t.Fatalf("advertised API %q", api)
	}
	c, err := client.New(api, nil)
	if err != nil {
		t.Fatal(err)
	}
	for c.Ready(ctx) != nil {
		select {
		case <-ctx.Done():
			t.Fatal("the node never became ready")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if _, _, err := c.Submit(ctx, []byte("through the API"), client.SubmitOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := n.keys.WaitKeys(ctx, "client"); err != nil {
		t.Fatal(err)
	}
	kc, err := kme.ClientFor(n.keys.URL, n.keys.TLSDir, "client")
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.OpenSession(ctx, kc, "client", "gateway", session.DefaultConfig())
	if err != nil {
		t.Fatalf("a session through the node's key manager: %v", err)
	}
	if _, _, err := s.Submit(ctx, []byte("sealed"), client.SubmitOptions{}); err != nil {
		t.Fatal(err)
	}
	n.Reload()
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Ready(ctx) == nil {
		t.Fatal("the API still answers after Stop")
	}
}

func TestConfigValidate(t *testing.T) {
	ok := testNodeConfig(t)
	for name, mutate := range map[string]func(*Config){
		"no API address": func(c *Config) { c.APIAddr = "" },
		"both key managers": func(c *Config) {
			c.KeyService = &kme.ServiceConfig{Addr: "127.0.0.1:0"}
			c.ExternalKME = ExternalKME{URL: "https://kme", Cert: "c", Key: "k"}
		},
		"plain http KME":   func(c *Config) { c.ExternalKME = ExternalKME{URL: "http://kme", Cert: "c", Key: "k"} },
		"KME without cert": func(c *Config) { c.ExternalKME = ExternalKME{URL: "https://kme"} },
	} {
		c := ok
		mutate(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
		if _, err := Start(c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Start: %v, want ErrInvalidConfig", name, err)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	// A node that cannot open leaves nothing listening.
	bad := ok
	bad.Cluster.Groups = 0
	bad.APIAddr = "127.0.0.1:0"
	if _, err := Start(bad); err == nil {
		t.Fatal("a node with 0 groups started")
	}
}
