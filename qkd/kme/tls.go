package kme

import (
	"crypto/tls"
	"crypto/x509"
)

// ServerTLSConfig is a TLS 1.3 server configuration for a KME: it offers
// only the hybrid post-quantum key exchange X25519MLKEM768 and verifies a
// client certificate against clientCAs when one is sent. Requests without
// one reach the handler, which answers 401 (VerifyClientCertIfGiven), so the
// same listener can serve endpoints that need no client certificate.
func ServerTLSConfig(cert tls.Certificate, clientCAs *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		Certificates:     []tls.Certificate{cert},
		ClientCAs:        clientCAs,
		ClientAuth:       tls.VerifyClientCertIfGiven,
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768},
	}
}

// ClientTLSConfig is a TLS 1.3 client configuration presenting an SAE
// certificate. It keeps Go's default key exchange preferences, which put
// X25519MLKEM768 first, so it still works with a KME without ML-KEM.
func ClientTLSConfig(cert tls.Certificate, roots *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      roots,
	}
}
