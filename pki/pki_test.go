package pki

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"
)

func TestIssueAndVerify(t *testing.T) {
	ca, err := NewCA("test root", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := loaded.Issue(Leaf{CommonName: "client", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(leaf.TLS.Certificate[0])
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("issued client certificate does not verify: %v", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Fatal("a client certificate verified as a server")
	}
	srv, err := ca.Issue(Leaf{CommonName: "kme", Server: true, Hosts: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := x509.ParseCertificate(srv.TLS.Certificate[0])
	if _, err := sc.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	other, _ := NewCA("other", time.Hour)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: other.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Fatal("verified against another CA")
	}
}

func TestBadInput(t *testing.T) {
	if _, err := LoadCA(t.TempDir()); !errors.Is(err, ErrNoCA) {
		t.Fatalf("empty dir: %v", err)
	}
	ca, _ := NewCA("r", time.Hour)
	if _, err := ca.Issue(Leaf{CommonName: "x"}); !errors.Is(err, ErrBadName) {
		t.Fatalf("no usage: %v", err)
	}
	if _, err := NewCA("", time.Hour); !errors.Is(err, ErrBadName) {
		t.Fatalf("no name: %v", err)
	}
}
