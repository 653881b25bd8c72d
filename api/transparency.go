package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"qledger/api/client"
	"qledger/chain"
	"qledger/cluster"
	"qledger/transparency"
)

// The C2SP transparency-log endpoints: a group's head as a signed
// checkpoint, the note key that signs it with its endorsement, and the
// log's Merkle hashes as tiles (package transparency; docs/AUDIT.md).

// errNoNoteKey: a node without a certificate has no note key.
var errNoNoteKey = fmt.Errorf("%w: this node has no certificate to derive a note key from; checkpoints need a cluster CA", cluster.ErrNotFound)

func (s *Server) transparencyRoutes() {
	s.route("GET", "/v1/groups/{g}/checkpoint", readers, s.failing(s.checkpoint))
	s.route("GET", "/v1/groups/{g}/checkpoint/key", readers, s.failing(s.checkpointKey))
	s.route("GET", "/v1/groups/{g}/tile/{path...}", readers, s.failing(s.tile))
}

// noteSigner is this node's note signer for group g's origin and its
// verifier key, derived afresh from the current certificate key (so a
// reloaded certificate takes effect at once).
func (s *Server) noteSigner(g int) (signer noteSignerKey, err error) {
	if s.cfg.TLS == nil {
		return signer, errNoNoteKey
	}
	cert := s.cfg.TLS.Certificate()
	origin, err := transparency.Origin(transparency.ClusterName(cert.Leaf.Issuer.CommonName), g)
	if err != nil {
		return signer, err
	}
	key, err := transparency.NoteKey(cert.PrivateKey)
	if err != nil {
		return signer, err
	}
	signer.origin = origin
	signer.signer, signer.vkey, err = transparency.Signer(origin, key)
	return signer, err
}

type noteSignerKey struct {
	origin string
	signer interface {
		Name() string
		KeyHash() uint32
		Sign([]byte) ([]byte, error)
	}
	vkey string
}

// checkpoint answers group g's head as a C2SP checkpoint signed with this
// node's note key: the log size and root of the head (as the head read
// at the given level returns it) and the block's height, hash and time.
func (s *Server) checkpoint(w http.ResponseWriter, r *http.Request) error {
	g, err := s.groupParam(r)
	if err != nil {
		return err
	}
	lv, err := level(r)
	if err != nil {
		return err
	}
	ns, err := s.noteSigner(g)
	if err != nil {
		return err
	}
	h, ok, err := s.ledger.Head(r.Context(), g, lv)
	if err != nil {
		return err
	}
	cp := transparency.Checkpoint{Origin: ns.origin, Root: chain.EmptyRoot()}
	if ok {
		cp.Size, cp.Root, cp.Extensions = h.LogSize, h.LogRoot, transparency.HeadExtensions(h)
	}
	signed, err := transparency.Sign(cp, ns.signer)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(signed)
	return nil
}

// checkpointKey answers the note verifier key this node signs group g's
// checkpoints with, endorsed by its certificate key.
func (s *Server) checkpointKey(w http.ResponseWriter, r *http.Request) error {
	g, err := s.groupParam(r)
	if err != nil {
		return err
	}
	ns, err := s.noteSigner(g)
	if err != nil {
		return err
	}
	sig, err := s.cfg.TLS.Sign(transparency.EndorsementStatement(ns.vkey))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, client.NoteKey{Origin: ns.origin, VerifierKey: ns.vkey, Node: s.cfg.TLS.Identity().Name,
		CertChain: s.cfg.TLS.ChainDER(), Endorsement: sig})
	return nil
}

// tile answers a C2SP tile of group g's log: tile/L/N[.p/W] holds the
// hashes of W perfect subtrees at Merkle level 8L from index N*256. A
// tile, full or partial, never changes once it exists; a full tile is
// cacheable for good. tile/entries/N[.p/W] is an entry bundle
// (entryBundle).
func (s *Server) tile(w http.ResponseWriter, r *http.Request) error {
	g, err := s.groupParam(r)
	if err != nil {
		return err
	}
	if strings.HasPrefix(r.PathValue("path"), transparency.EntriesPrefix) {
		return s.entryBundle(w, r, g)
	}
	t, err := transparency.ParseTile(r.PathValue("path"))
	if err != nil {
		return fmt.Errorf("%w: %v", cluster.ErrNotFound, err)
	}
	lv, err := level(r)
	if err != nil {
		return err
	}
	hashes, err := s.tileHashes(r, g, t, lv)
	if err != nil {
		return err
	}
	writeTile(w, t.W == transparency.TileWidth, "public", transparency.TileHashes(hashes))
	return nil
}

// writeTile answers a tile or entry bundle: a full one is cacheable for
// good, a partial one for a minute (the client moves on to a wider one).
// scope is "public", or "private" for a bundle only some callers may read.
func writeTile(w http.ResponseWriter, full bool, scope string, body []byte) {
	w.Header().Set("Content-Type", "application/octet-stream")
	if full {
		w.Header().Set("Cache-Control", scope+", max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", scope+", max-age=60")
	}
	_, _ = w.Write(body)
}

// entryBundle answers a C2SP entry bundle of group g's log,
// tile/entries/N[.p/W]: the W log entries from index 256N, each the
// canonical transaction bytes whose RFC 6962 leaf hash
// (SHA-256(0x00 || bytes), tlog.RecordHash) is the log's leaf, with a
// big-endian uint16 length before each. A bundle is served whole or not
// at all: if any of its entries is over 65535 bytes (a function
// deployment can be) the answer is 413 too_large, and if any is a share
// segment the caller may not read, 403 forbidden; both name the entry,
// whose bytes (or leaf hash) the blocks carry. A bundle holding a
// reader-restricted share is cacheable only privately.
func (s *Server) entryBundle(w http.ResponseWriter, r *http.Request, g int) error {
	t, err := transparency.ParseEntryBundle(r.PathValue("path"))
	if err != nil {
		return fmt.Errorf("%w: %v", cluster.ErrNotFound, err)
	}
	lv, err := level(r)
	if err != nil {
		return err
	}
	from := uint64(t.N) * transparency.TileWidth
	entries, err := s.logEntries(r, g, from, t.W, lv)
	if err != nil {
		return err
	}
	scope := "public"
	for i, e := range entries {
		if s.withheld(r, e) {
			s.fail(w, r, fmt.Errorf("%w: entry %d of group %d's log is a share segment this caller is not a reader of, so bundle %s is not served to it (the block's leaf hash stands for the entry)",
				errForbidden, from+uint64(i), g, transparency.EntryBundlePath(t)))
			return nil
		}
		if restricted(e) {
			scope = "private"
		}
	}
	body, err := transparency.EntryBundle(entries)
	if err != nil {
		s.fail(w, r, fmt.Errorf("%w: bundle %s of group %d starting at entry %d: %v; read the entry from the blocks (/v1/groups/%d/blocks)",
			cluster.ErrTooLarge, transparency.EntryBundlePath(t), g, from, err, g))
		return nil
	}
	writeTile(w, t.W == transparency.TileWidth, scope, body)
	return nil
}

// bundleBlocksPerRead bounds one Blocks read of logEntries: blocks of a
// bundle's entries are small, but a block may hold a deployment of
// megabytes, and a read's answer travels in one internal frame.
const bundleBlocksPerRead = 16

// logEntries reads count entries of group g's log from index from: it
// finds the block holding entry from by bisecting the heights on each
// header's log size, then reads blocks onward. A range past the log is
// ErrNotFound.
func (s *Server) logEntries(r *http.Request, g int, from uint64, count int, lv cluster.Level) ([][]byte, error) {
	ctx := r.Context()
	head, ok, err := s.ledger.Head(ctx, g, lv)
	if err != nil {
		return nil, err
	}
	end := from + uint64(count)
	if !ok || head.LogSize < end {
		return nil, fmt.Errorf("%w: entries %d..%d are past group %d's log of %d", cluster.ErrNotFound, from, end-1, g, head.LogSize)
	}
	// The first height whose log size passes from holds entry from.
	lo, hi := uint64(1), head.Height
	for lo < hi {
		mid := lo + (hi-lo)/2
		raw, err := s.ledger.Block(ctx, g, mid, lv)
		if err != nil {
			return nil, err
		}
		h, err := chain.DecodeHeader(raw[:min(len(raw), chain.HeaderSize)])
		if err != nil {
			return nil, fmt.Errorf("api: stored block does not decode: %w", err)
		}
		if h.LogSize > from {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	out := make([][]byte, 0, count)
	for height := lo; uint64(len(out)) < uint64(count); {
		raws, err := s.ledger.Blocks(ctx, g, height, min(bundleBlocksPerRead, count), lv)
		if err != nil {
			return nil, err
		}
		if len(raws) == 0 {
			return nil, fmt.Errorf("%w: group %d has no block %d though its log has %d entries", cluster.ErrStore, g, height, head.LogSize)
		}
		for _, raw := range raws {
			b, err := chain.DecodeBlock(raw)
			if err != nil {
				return nil, fmt.Errorf("api: stored block does not decode: %w", err)
			}
			first := b.Header.LogSize - uint64(len(b.Txs))
			for i, tx := range b.Txs {
				if idx := first + uint64(i); idx >= from && idx < end {
					out = append(out, tx)
				}
			}
			height++
		}
	}
	return out, nil
}

// tileHashes reads tile t's hashes, W at a time. The chain store keeps
// the log's hashes as C2SP tiles itself (fsm/tiles.go), so this is one
// stored value sliced.
func (s *Server) tileHashes(r *http.Request, g int, t tlog.Tile, lv cluster.Level) ([]chain.Hash, error) {
	level, from, count := transparency.TileRange(t)
	hs, err := s.ledger.LogNodes(r.Context(), g, level, from, count, lv)
	if errors.Is(err, cluster.ErrBadRequest) {
		return nil, fmt.Errorf("%w: tile %s is past group %d's log: %v", cluster.ErrNotFound, transparency.TilePath(t), g, err)
	}
	return hs, err
}
