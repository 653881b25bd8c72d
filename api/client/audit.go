package client

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"qledger/chain"
	"qledger/pki"
)

// HeaderOf rebuilds the canonical header from its wire form and checks
// that it hashes to the stated block hash.
func HeaderOf(h Head) (chain.Header, error) {
	var (
		hd  = chain.Header{Version: h.Version, Group: h.Group, Height: h.Height, Timestamp: h.Timestamp, TxCount: h.TxCount, LogSize: h.LogSize}
		err error
	)
	if hd.PrevHash, err = chain.ParseHash(h.PrevHash); err != nil {
		return hd, fmt.Errorf("%w: prev_hash: %v", ErrVerify, err)
	}
	if hd.TxRoot, err = chain.ParseHash(h.TxRoot); err != nil {
		return hd, fmt.Errorf("%w: tx_root: %v", ErrVerify, err)
	}
	if hd.LogRoot, err = chain.ParseHash(h.LogRoot); err != nil {
		return hd, fmt.Errorf("%w: log_root: %v", ErrVerify, err)
	}
	if got := hd.Hash().String(); got != h.Hash {
		return hd, fmt.Errorf("%w: header fields hash to %s, not %s", ErrVerify, got, h.Hash)
	}
	return hd, nil
}

// VerifyHeadSignature checks a signed head: the header fields hash to the
// block hash, the certificate chain verifies against roots (the cluster
// CA) as a node certificate naming the stated signer, and the signature
// over chain.HeadStatement verifies under that certificate's key. An
// unsigned head fails with ErrUnsigned.
func VerifyHeadSignature(h Head, roots *x509.CertPool) (pki.Identity, error) {
	if h.Height == 0 {
		return pki.Identity{}, nil // an empty chain: nothing to vouch for
	}
	if len(h.Signature) == 0 {
		return pki.Identity{}, fmt.Errorf("%w: group %d head %d", ErrUnsigned, h.Group, h.Height)
	}
	hd, err := HeaderOf(h)
	if err != nil {
		return pki.Identity{}, err
	}
	id, err := pki.VerifySignature(h.CertChain, roots, chain.HeadStatement(&hd, h.SignedAt), h.Signature)
	if err != nil {
		return id, fmt.Errorf("%w: group %d head %d: %v", ErrVerify, h.Group, h.Height, err)
	}
	if id.NodeID != h.Signer {
		return id, fmt.Errorf("%w: head signed by node %.12s but claims %.12s", ErrVerify, id.NodeID, h.Signer)
	}
	return id, nil
}

// ErrUnsigned is returned for a head that carries no signature.
var ErrUnsigned = errors.New("client: head is not signed")

// TrustedHead is a head an auditor has verified.
type TrustedHead struct {
	Height     uint64    `json:"height"`
	Hash       string    `json:"hash"`
	LogSize    uint64    `json:"log_size"`
	LogRoot    string    `json:"log_root"`
	Signer     string    `json:"signer,omitempty"`
	VerifiedAt time.Time `json:"verified_at"`
}

// AuditState is an auditor's trusted-state cache: per group, the heads it
// verified, oldest first (the newest is what every new head must extend).
type AuditState struct {
	Groups map[string][]TrustedHead `json:"groups"`
	// Checkpoints are the newest verified C2SP checkpoint of each group
	// (AuditCheckpoint), NoteKeys the note verifier keys whose
	// endorsement it checked.
	Checkpoints map[string]TrustedCheckpoint `json:"checkpoints,omitempty"`
	NoteKeys    []string                     `json:"note_keys,omitempty"`
}

// maxTrusted is how many verified heads a group's history keeps; older
// ones help place a rewrite but are not needed for safety.
const maxTrusted = 256

// LoadAuditState reads a state file; a missing file is an empty state.
func LoadAuditState(path string) (*AuditState, error) {
	st := &AuditState{Groups: map[string][]TrustedHead{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("client: audit state: %w", err)
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("client: audit state %s: %w", path, err)
	}
	if st.Groups == nil {
		st.Groups = map[string][]TrustedHead{}
	}
	return st, nil
}

// Save writes the state atomically (temporary file, then rename).
func (s *AuditState) Save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("client: audit state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("client: audit state: %w", err)
	}
	return nil
}

// Latest is group g's newest trusted head.
func (s *AuditState) Latest(g int) (TrustedHead, bool) {
	l := s.Groups[strconv.Itoa(g)]
	if len(l) == 0 {
		return TrustedHead{}, false
	}
	return l[len(l)-1], true
}

func (s *AuditState) trust(g int, h Head, signer string) {
	k := strconv.Itoa(g)
	l := append(s.Groups[k], TrustedHead{Height: h.Height, Hash: h.Hash, LogSize: h.LogSize, LogRoot: h.LogRoot, Signer: signer, VerifiedAt: time.Now().UTC()})
	if len(l) > maxTrusted {
		l = l[len(l)-maxTrusted:]
	}
	s.Groups[k] = l
}

// Finding kinds.
const (
	FindingRollback  = "rollback"      // the server's head is behind a trusted one
	FindingFork      = "fork"          // same height or log size, another hash or root
	FindingRewritten = "rewritten"     // the new head does not extend the trusted log
	FindingSignature = "bad_signature" // the head's signature does not verify
	FindingUnsigned  = "unsigned"      // a head without a signature where one is required
)

// Finding is something an audit found wrong. Heights name the trusted
// head, the server's head and, for a rewrite, the newest trusted height
// the server still agrees with and the first it does not.
type Finding struct {
	Group         int    `json:"group"`
	Kind          string `json:"kind"`
	TrustedHeight uint64 `json:"trusted_height"`
	ServerHeight  uint64 `json:"server_height"`
	AgreesUpTo    uint64 `json:"agrees_up_to,omitempty"`
	FirstBad      uint64 `json:"first_bad_height,omitempty"`
	Detail        string `json:"detail"`
}

func (f *Finding) Error() string {
	s := fmt.Sprintf("group %d: %s: trusted head %d, server head %d", f.Group, f.Kind, f.TrustedHeight, f.ServerHeight)
	if f.FirstBad > 0 {
		s += fmt.Sprintf(", agrees up to height %d, differs from height %d", f.AgreesUpTo, f.FirstBad)
	}
	return s + ": " + f.Detail
}

// AuditOptions configure one audit pass.
type AuditOptions struct {
	// Roots is the cluster CA; when set, every head's signature must
	// verify (unsigned heads are findings).
	Roots *x509.CertPool
}

// AuditGroup checks group g's current head against the trusted state and,
// if it is sound, trusts it. The first head of a group is trusted after
// verifying the whole chain; every later one must extend the newest
// trusted head: a valid consistency proof from its log, and blocks that
// link back to its hash. A *Finding is returned for a misbehaving server;
// other errors are failures to ask (the state is unchanged either way).
func (c *Client) AuditGroup(ctx context.Context, g int, st *AuditState, opt AuditOptions) (Head, error) {
	h, err := c.Head(ctx, g, "")
	if err != nil {
		return h, err
	}
	if h.Height > 0 {
		if _, err := HeaderOf(h); err != nil {
			return h, &Finding{Group: g, Kind: FindingSignature, ServerHeight: h.Height, Detail: err.Error()}
		}
	}
	signer := ""
	if opt.Roots != nil {
		id, err := VerifyHeadSignature(h, opt.Roots)
		if errors.Is(err, ErrUnsigned) {
			return h, &Finding{Group: g, Kind: FindingUnsigned, ServerHeight: h.Height, Detail: err.Error()}
		}
		if err != nil {
			return h, &Finding{Group: g, Kind: FindingSignature, ServerHeight: h.Height, Detail: err.Error()}
		}
		signer = id.NodeID
	}
	last, ok := st.Latest(g)
	if !ok {
		// The chain up to exactly this head, which may be older than the
		// server's newest by the time the blocks are read.
		if _, err := c.VerifyGroupTo(ctx, g, h); err != nil {
			if _, bad := chain.IsVerifyError(err); bad || errors.Is(err, ErrVerify) {
				return h, &Finding{Group: g, Kind: FindingRewritten, ServerHeight: h.Height, Detail: "the chain does not verify up to the head: " + err.Error()}
			}
			return h, err
		}
		st.trust(g, h, signer)
		return h, nil
	}
	finding := func(kind, detail string) *Finding {
		return &Finding{Group: g, Kind: kind, TrustedHeight: last.Height, ServerHeight: h.Height, Detail: detail}
	}
	switch {
	case h.Height < last.Height || h.LogSize < last.LogSize:
		return h, finding(FindingRollback, fmt.Sprintf("log size %d, trusted %d", h.LogSize, last.LogSize))
	case h.Height == last.Height:
		if h.Hash != last.Hash || h.LogRoot != last.LogRoot {
			return h, finding(FindingFork, fmt.Sprintf("block hash %s, trusted %s", h.Hash, last.Hash))
		}
		return h, nil
	case h.LogSize == last.LogSize && h.LogRoot != last.LogRoot:
		return h, finding(FindingFork, fmt.Sprintf("log of %d transactions with root %s, trusted root %s", h.LogSize, h.LogRoot, last.LogRoot))
	}
	if h.LogSize > last.LogSize {
		cp, err := c.Consistency(ctx, g, last.LogSize, h.LogSize, "")
		if err != nil {
			return h, err
		}
		if err := VerifyConsistency(cp, last.LogRoot, h.LogRoot); err != nil {
			f := finding(FindingRewritten, "the log is not an extension of the trusted log: "+err.Error())
			c.locate(ctx, g, st, f)
			return h, f
		}
	}
	// The new blocks link back to the trusted head.
	prev := last.Hash
	for from := last.Height + 1; from <= h.Height; {
		bs, err := c.Blocks(ctx, g, from, 200, "")
		if err != nil {
			return h, err
		}
		if len(bs) == 0 {
			return h, finding(FindingRewritten, fmt.Sprintf("the server has no block %d below its head", from))
		}
		for _, wb := range bs {
			b := wb.LeafBlock()
			if b.Err != nil {
				return h, finding(FindingRewritten, fmt.Sprintf("block %d does not decode: %v", wb.Height, b.Err))
			}
			if b.Header.Height > h.Height {
				break
			}
			if chain.RootFromLeaves(b.Leaves) != b.Header.TxRoot {
				return h, finding(FindingRewritten, fmt.Sprintf("block %d: its transactions do not hash to its transaction root", b.Header.Height))
			}
			if b.Header.Height != from || b.Header.PrevHash.String() != prev {
				f := finding(FindingRewritten, fmt.Sprintf("block %d does not link to the trusted block %d", b.Header.Height, b.Header.Height-1))
				c.locate(ctx, g, st, f)
				return h, f
			}
			prev, from = b.Header.Hash().String(), b.Header.Height+1
		}
	}
	if prev != h.Hash {
		return h, finding(FindingRewritten, "the blocks after the trusted head do not end at the server's head")
	}
	st.trust(g, h, signer)
	return h, nil
}

// locate compares the server's blocks with the trusted history to name
// the newest trusted height it agrees with and the first it does not.
func (c *Client) locate(ctx context.Context, g int, st *AuditState, f *Finding) {
	hist := st.Groups[strconv.Itoa(g)]
	for i := len(hist) - 1; i >= 0; i-- {
		b, err := c.Block(ctx, g, hist[i].Height, "")
		if err != nil {
			if IsStatus(err, 404) {
				f.FirstBad = hist[i].Height
				continue
			}
			return
		}
		if lb := b.LeafBlock(); lb.Err == nil && lb.Header.Hash().String() == hist[i].Hash {
			f.AgreesUpTo = hist[i].Height
			return
		}
		f.FirstBad = hist[i].Height
	}
}
