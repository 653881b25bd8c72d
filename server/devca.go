package server

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"qledger/api/client"
	"qledger/pki"
)

// DevRoles are the client certificates DevCA issues, one per role, as
// <role>.pem and <role>-key.pem beside ca.pem.
var DevRoles = []pki.Role{pki.RoleSubmitter, pki.RoleAuditor, pki.RoleAdmin}

// DevCA loads the CA in dir, or creates a throwaway one valid for 30
// days, and makes sure a client certificate for every role in DevRoles is
// there. It is for embedded clusters, never for production.
func DevCA(dir string) (*pki.CA, error) {
	ca, err := pki.LoadCA(dir)
	if errors.Is(err, pki.ErrNoCA) {
		if ca, err = pki.NewCA("qledger dev cluster CA", 30*24*time.Hour); err == nil {
			err = ca.Save(dir)
		}
	}
	if err != nil {
		return nil, err
	}
	for _, r := range DevRoles {
		if _, err := pki.LoadCredentials(filepath.Join(dir, "ca.pem"), filepath.Join(dir, string(r)+".pem"), filepath.Join(dir, string(r)+"-key.pem")); err == nil {
			continue
		}
		cert, err := ca.Issue(pki.Leaf{CommonName: string(r), Role: r, Client: true})
		if err != nil {
			return nil, err
		}
		if err := cert.Save(dir, string(r)); err != nil {
			return nil, err
		}
	}
	return ca, nil
}

// RoleClient is an API client for addr presenting dir's certificate for
// role (as DevCA writes them).
func RoleClient(dir string, role pki.Role, addr string) (*client.Client, error) {
	creds, err := pki.LoadCredentials(filepath.Join(dir, "ca.pem"), filepath.Join(dir, string(role)+".pem"), filepath.Join(dir, string(role)+"-key.pem"))
	if err != nil {
		return nil, fmt.Errorf("server: %s certificate: %w", role, err)
	}
	return client.NewTLS(addr, creds.ClientConfig(nil))
}

// TLSHint is how to point the CLI at dir's certificate for role.
func TLSHint(dir string, role pki.Role) string {
	return fmt.Sprintf("--ca %s --cert %s --cert-key %s", filepath.Join(dir, "ca.pem"), filepath.Join(dir, string(role)+".pem"), filepath.Join(dir, string(role)+"-key.pem"))
}

// CertPair names the certificate and key files of name in dir, as
// pki.Issued.Save writes them: "dir/name.pem dir/name-key.pem".
func CertPair(dir, name string) string {
	return filepath.Join(dir, name+".pem") + " " + filepath.Join(dir, name+"-key.pem")
}
