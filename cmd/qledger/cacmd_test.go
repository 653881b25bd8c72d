package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestCAIssueSANs checks that --ip and --dns (repeatable, or
// comma-separated) and the older --hosts land in the certificate's SANs,
// and that an address given as a name, or a name as an address, is a
// usage error that writes nothing.
func TestCAIssueSANs(t *testing.T) {
	dir := t.TempDir()
	if r := cli(t, "ca", "init", "--dir", dir); r.code != exitOK {
		t.Fatalf("ca init: %+v", r)
	}
	r := cli(t, "ca", "issue", "--dir", dir, "--role", "node", "--name", "n1", "--ip", "10.0.0.1", "--ip", "::1,127.0.0.1",
		"--dns", "n1.example", "--dns", "localhost", "--hosts", "old.example")
	if r.code != exitOK {
		t.Fatalf("ca issue: %+v", r)
	}
	b, err := os.ReadFile(filepath.Join(dir, "n1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, ip := range cert.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"10.0.0.1", "::1", "127.0.0.1"}; !slices.Equal(ips, want) {
		t.Fatalf("IP SANs %v, want %v", ips, want)
	}
	if want := []string{"old.example", "n1.example", "localhost"}; !slices.Equal(cert.DNSNames, want) {
		t.Fatalf("DNS SANs %v, want %v", cert.DNSNames, want)
	}
	if err := cert.VerifyHostname("10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{{"--ip", "n1.example"}, {"--dns", "10.0.0.2"}, {"--dns", "a b"}} {
		args := append([]string{"ca", "issue", "--dir", dir, "--role", "node", "--name", "bad"}, bad...)
		cli(t, args...).want(t, exitUsage, "ca issue: "+bad[0])
		if _, err := os.Stat(filepath.Join(dir, "bad.pem")); err == nil {
			t.Fatalf("%v wrote a certificate", bad)
		}
	}
}
