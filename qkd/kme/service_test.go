package kme

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	certs "qledger/pki"
	"qledger/qkd"
)

// TestService starts a key manager service, waits for its first keys and
// takes one over mutual TLS with the certificate the service wrote for
// the client SAE; the gateway fetches the same key in process.
func TestService(t *testing.T) {
	dir := t.TempDir()
	qc := qkd.DefaultConfig()
	qc.Qubits = 1 << 16
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := StartService(ctx, ServiceConfig{Addr: "127.0.0.1:0", TLSDir: dir, Masters: []string{"alice"}, Gateway: "gw", QKD: qc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, f := range []string{"ca.pem", "ca-key.pem", "alice.pem", "alice-key.pem", "gw.pem", "gw-key.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("the service did not write %s: %v", f, err)
		}
	}
	if err := s.WaitKeys(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	c, err := ClientFor(s.URL, dir, "alice")
	if err != nil {
		t.Fatal(err)
	}
	one, size := 1, 256
	keys, err := c.EncKeys(ctx, "gw", KeyRequest{Number: &one, Size: &size})
	if err != nil || len(keys) != 1 {
		t.Fatalf("enc_keys over mutual TLS: %v, %d keys", err, len(keys))
	}
	got, err := s.KME.Local("gw").DecKeys(ctx, "alice", []string{keys[0].KeyID})
	if err != nil || len(got) != 1 || !bytes.Equal(got[0].Key, keys[0].Key) {
		t.Fatalf("dec_keys in process: %v, %+v", err, got)
	}
	// A pool nobody asked for, and a reload after the CA went away.
	if err := s.WaitKeys(ctx, "bob"); !errors.Is(err, ErrUnknownPair) {
		t.Fatalf("WaitKeys for an unknown SAE: %v", err)
	}
	if err := s.Reload(); err != nil {
		t.Fatalf("Reload with the CA in place: %v", err)
	}
	os.Remove(filepath.Join(dir, "ca-key.pem"))
	if err := s.Reload(); !errors.Is(err, certs.ErrNoCA) {
		t.Fatalf("Reload without the CA key: %v", err)
	}
	// The old certificate stays in use.
	if _, err := c.Status(ctx, "gw"); err != nil {
		t.Fatalf("status after a failed reload: %v", err)
	}
}

func TestServiceRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []ServiceConfig{
		{Addr: "127.0.0.1:0", TLSDir: dir, Masters: []string{"alice"}},
		{Addr: "127.0.0.1:0", TLSDir: dir, Gateway: "gw"},
	} {
		if _, err := StartService(context.Background(), c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: %v, want ErrInvalidConfig", c, err)
		}
	}
	if _, err := StartService(context.Background(), ServiceConfig{Addr: "256.0.0.1:0", TLSDir: dir, Masters: []string{"alice"}, Gateway: "gw", QKD: qkd.DefaultConfig()}); err == nil {
		t.Error("a service on an address that cannot be bound started")
	}
	if _, _, err := DialSAE("https://127.0.0.1:1", filepath.Join(dir, "none.pem"), filepath.Join(dir, "none-key.pem"), ""); err == nil {
		t.Error("DialSAE without a certificate succeeded")
	}
}
