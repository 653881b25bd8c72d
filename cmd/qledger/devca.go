package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"qledger/api/client"
	"qledger/pki"
)

// devRoles are the client certificates an embedded cluster's CA issues,
// one per role, as <role>.pem and <role>-key.pem beside ca.pem.
var devRoles = []pki.Role{pki.RoleSubmitter, pki.RoleAuditor, pki.RoleAdmin}

// devCA loads the CA in dir, or creates a throwaway one, and makes sure a
// client certificate for every role is there.
func devCA(dir string) (*pki.CA, error) {
	ca, err := pki.LoadCA(dir)
	if errors.Is(err, pki.ErrNoCA) {
		if ca, err = pki.NewCA("qledger dev cluster CA", 30*24*time.Hour); err == nil {
			err = ca.Save(dir)
		}
	}
	if err != nil {
		return nil, err
	}
	for _, r := range devRoles {
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

// roleClient is an API client for addr presenting dir's certificate for
// role.
func roleClient(dir string, role pki.Role, addr string) (*client.Client, error) {
	creds, err := pki.LoadCredentials(filepath.Join(dir, "ca.pem"), filepath.Join(dir, string(role)+".pem"), filepath.Join(dir, string(role)+"-key.pem"))
	if err != nil {
		return nil, fmt.Errorf("%s certificate: %w", role, err)
	}
	return client.NewTLS(addr, creds.ClientConfig(nil))
}

// tlsHint is how to point the CLI at dir's certificate for role.
func tlsHint(dir string, role pki.Role) string {
	return fmt.Sprintf("--ca %s --cert %s --cert-key %s", filepath.Join(dir, "ca.pem"), filepath.Join(dir, string(role)+".pem"), filepath.Join(dir, string(role)+"-key.pem"))
}
