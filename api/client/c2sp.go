package client

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"qledger/pki"
	"qledger/transparency"
)

// The C2SP side of an audit: checkpoints opened with sumdb/note under
// CA-endorsed note keys, consistency proved with sumdb/tlog over the
// served tiles (docs/AUDIT.md).

// TrustedCheckpoint is a checkpoint an auditor has verified.
type TrustedCheckpoint struct {
	Origin     string    `json:"origin"`
	Size       uint64    `json:"size"`
	Root       string    `json:"root"` // base64, as in the checkpoint
	Height     uint64    `json:"height"`
	Note       string    `json:"note"` // the signed note as served
	VerifiedAt time.Time `json:"verified_at"`
}

// Checkpoint returns group g's signed checkpoint as served.
func (c *Client) Checkpoint(ctx context.Context, g int) ([]byte, error) {
	return c.getRaw(ctx, fmt.Sprintf("/v1/groups/%d/checkpoint", g))
}

// NoteKey returns the note key the node signs group g's checkpoints with
// and its endorsement (unchecked: see VerifyNoteKey).
func (c *Client) NoteKey(ctx context.Context, g int) (NoteKey, error) {
	var out NoteKey
	_, err := c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/groups/%d/checkpoint/key", g), nil, nil, &out)
	return out, err
}

// Tile returns one C2SP tile of group g's log by its path without the
// "tile/" prefix ("0/x001/234.p/5").
func (c *Client) Tile(ctx context.Context, g int, path string) ([]byte, error) {
	return c.getRaw(ctx, fmt.Sprintf("/v1/groups/%d/tile/%s", g, path))
}

// getRaw GETs path and returns the body of a 200 answer.
func (c *Client) getRaw(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("client: GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(data, &e.Body) != nil || e.Body.Code == "" {
			e.Body = ErrorBody{Code: CodeInternal, Error: strings.TrimSpace(string(data))}
		}
		return nil, e
	}
	return data, nil
}

// VerifyNoteKey checks k's endorsement: a node certificate of the CA
// roots signed transparency.EndorsementStatement(k.VerifierKey), and the
// key is named for the origin. It returns the endorsing node.
func VerifyNoteKey(k NoteKey, roots *x509.CertPool) (pki.Identity, error) {
	id, err := pki.VerifySignature(k.CertChain, roots, transparency.EndorsementStatement(k.VerifierKey), k.Endorsement)
	if err != nil {
		return id, fmt.Errorf("%w: note key endorsement: %v", ErrVerify, err)
	}
	if id.Role != pki.RoleNode {
		return id, fmt.Errorf("%w: note key endorsed by a %s certificate, not a node's", ErrVerify, id.Role)
	}
	if name, _, _ := strings.Cut(k.VerifierKey, "+"); name != k.Origin {
		return id, fmt.Errorf("%w: note key named %q for origin %q", ErrVerify, name, k.Origin)
	}
	return id, nil
}

// c2spTiles reads tiles of one group for tlog.
type c2spTiles struct {
	ctx context.Context
	c   *Client
	g   int
}

func (c2spTiles) Height() int { return transparency.TileHeight }
func (t c2spTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, x := range tiles {
		b, err := t.c.Tile(t.ctx, t.g, transparency.TilePath(x))
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}
func (c2spTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// AuditCheckpoint checks group g's current checkpoint against the trusted
// state and, if it is sound, trusts it. The note must open under a note
// key endorsed by a node certificate of roots (keys are fetched and
// checked as new ones appear, and kept in the state); the tiles must
// reproduce its root (tlog.TreeHash); and it must extend the newest
// trusted checkpoint: a tlog.ProveTree proof over the tiles that
// tlog.CheckTree accepts. A *Finding is returned for a misbehaving
// server; other errors are failures to ask (the state is unchanged).
func (c *Client) AuditCheckpoint(ctx context.Context, g int, st *AuditState, roots *x509.CertPool) (TrustedCheckpoint, error) {
	if roots == nil {
		return TrustedCheckpoint{}, errors.New("client: a C2SP audit needs the cluster CA (--ca)")
	}
	signed, err := c.Checkpoint(ctx, g)
	if err != nil {
		return TrustedCheckpoint{}, err
	}
	n, err := c.openCheckpoint(ctx, g, signed, st, roots)
	if err != nil {
		return TrustedCheckpoint{}, err
	}
	cp, err := transparency.ParseCheckpoint(n.Text)
	if err != nil {
		return TrustedCheckpoint{}, &Finding{Group: g, Kind: FindingSignature, Detail: err.Error()}
	}
	now := TrustedCheckpoint{Origin: cp.Origin, Size: cp.Size, Root: base64.StdEncoding.EncodeToString(cp.Root[:]), Height: extHeight(cp), Note: string(signed)}
	prev, had := st.Checkpoints[strconv.Itoa(g)]
	finding := func(kind, detail string) error {
		return &Finding{Group: g, Kind: kind, TrustedHeight: prev.Height, ServerHeight: now.Height, Detail: detail}
	}
	if had && prev.Origin != now.Origin {
		return now, finding(FindingFork, fmt.Sprintf("origin %q, trusted %q", now.Origin, prev.Origin))
	}
	th := tlog.Hash(cp.Root)
	if cp.Size > 0 {
		hr := tlog.TileHashReader(tlog.Tree{N: int64(cp.Size), Hash: th}, c2spTiles{ctx, c, g})
		if _, err := tlog.TreeHash(int64(cp.Size), hr); err != nil {
			return now, finding(FindingRewritten, fmt.Sprintf("the tiles do not give the checkpoint's root: %v", err))
		}
		if had && prev.Size > 0 && prev.Size <= cp.Size {
			var old tlog.Hash
			b, _ := base64.StdEncoding.DecodeString(prev.Root)
			copy(old[:], b)
			p, err := tlog.ProveTree(int64(cp.Size), int64(prev.Size), hr)
			if err == nil {
				err = tlog.CheckTree(p, int64(cp.Size), th, int64(prev.Size), old)
			}
			if err != nil {
				kind := FindingRewritten
				if prev.Size == cp.Size {
					kind = FindingFork
				}
				return now, finding(kind, fmt.Sprintf("log size %d does not extend the trusted size %d: %v", cp.Size, prev.Size, err))
			}
		}
	}
	if had && cp.Size < prev.Size {
		return now, finding(FindingRollback, fmt.Sprintf("log size %d, trusted %d", cp.Size, prev.Size))
	}
	now.VerifiedAt = time.Now().UTC()
	if st.Checkpoints == nil {
		st.Checkpoints = map[string]TrustedCheckpoint{}
	}
	st.Checkpoints[strconv.Itoa(g)] = now
	return now, nil
}

// openCheckpoint opens signed with the note keys the state trusts,
// fetching and checking the answering node's key when none of them
// signed it.
func (c *Client) openCheckpoint(ctx context.Context, g int, signed []byte, st *AuditState, roots *x509.CertPool) (*note.Note, error) {
	open := func() (*note.Note, error) {
		var vs []note.Verifier
		for _, k := range st.NoteKeys {
			if v, err := note.NewVerifier(k); err == nil {
				vs = append(vs, v)
			}
		}
		return note.Open(signed, note.VerifierList(vs...))
	}
	n, err := open()
	var unknown *note.UnverifiedNoteError
	if !errors.As(err, &unknown) {
		if err != nil {
			return nil, &Finding{Group: g, Kind: FindingSignature, Detail: err.Error()}
		}
		return n, nil
	}
	k, err := c.NoteKey(ctx, g)
	if err != nil {
		return nil, err
	}
	if _, err := VerifyNoteKey(k, roots); err != nil {
		return nil, &Finding{Group: g, Kind: FindingSignature, Detail: err.Error()}
	}
	if !slices.Contains(st.NoteKeys, k.VerifierKey) {
		st.NoteKeys = append(st.NoteKeys, k.VerifierKey)
	}
	if n, err = open(); err != nil {
		return nil, &Finding{Group: g, Kind: FindingSignature, Detail: "the checkpoint opens under no endorsed note key: " + err.Error()}
	}
	return n, nil
}

// extHeight is the block height a qledger checkpoint names, 0 if none.
func extHeight(cp transparency.Checkpoint) uint64 {
	for _, e := range cp.Extensions {
		if v, ok := strings.CutPrefix(e, "height "); ok {
			h, _ := strconv.ParseUint(v, 10, 64)
			return h
		}
	}
	return 0
}
