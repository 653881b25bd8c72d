package kme

import (
	"context"
	"fmt"
)

// Local is one SAE's in-process access to a Server, with the operations
// and signatures of Client: code written against Client's methods works
// against either, and a KME in the same process is reached without a
// loopback request. The SAE ID that a client certificate carries over HTTPS
// is fixed when the Local is made, so whoever holds a Local acts as that SAE.
// Checks, effects and errors are those of Server.EncKeys and Server.DecKeys
// (ErrBadRequest, ErrUnknownPair, ErrKeyNotFound, ErrUnavailable). Safe for
// concurrent use.
type Local struct {
	s   *Server
	sae string
}

// Local returns in-process access to s as the SAE sae. The ID is checked on
// each call.
func (s *Server) Local(sae string) *Local { return &Local{s: s, sae: sae} }

// SAE returns the SAE ID this Local acts as.
func (l *Local) SAE() string { return l.sae }

// Status describes the link between this SAE and other (either way round).
// It fails with ErrUnknownPair if they share no pool.
func (l *Local) Status(ctx context.Context, other string) (Status, error) {
	if err := ctx.Err(); err != nil {
		return Status{}, err
	}
	for _, id := range []string{l.sae, other} {
		if err := ValidateSAEID(id); err != nil {
			return Status{}, err
		}
	}
	st, ok := l.s.statusOf(l.sae, other)
	if !ok {
		return Status{}, fmt.Errorf("%w: %s and %s", ErrUnknownPair, l.sae, other)
	}
	return st, nil
}

// EncKeys takes keys shared with slave, this SAE being the master.
func (l *Local) EncKeys(ctx context.Context, slave string, req KeyRequest) ([]Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.s.takeKeys(l.sae, slave, req)
}

// DecKeys fetches, as the slave, the keys master took, and erases them.
func (l *Local) DecKeys(ctx context.Context, master string, ids []string) ([]Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.s.DecKeys(master, l.sae, ids)
}
