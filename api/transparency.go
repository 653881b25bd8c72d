package api

import (
	"errors"
	"fmt"
	"net/http"

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
	s.route("GET", "/v1/groups/{g}/checkpoint", readers, s.checkpoint)
	s.route("GET", "/v1/groups/{g}/checkpoint/key", readers, s.checkpointKey)
	s.route("GET", "/v1/groups/{g}/tile/{path...}", readers, s.tile)
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
func (s *Server) checkpoint(w http.ResponseWriter, r *http.Request) {
	g, err := s.groupParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	lv, err := level(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ns, err := s.noteSigner(g)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h, ok, err := s.ledger.Head(r.Context(), g, lv)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cp := transparency.Checkpoint{Origin: ns.origin, Root: chain.EmptyRoot()}
	if ok {
		cp.Size, cp.Root, cp.Extensions = h.LogSize, h.LogRoot, transparency.HeadExtensions(h)
	}
	signed, err := transparency.Sign(cp, ns.signer)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(signed)
}

// checkpointKey answers the note verifier key this node signs group g's
// checkpoints with, endorsed by its certificate key.
func (s *Server) checkpointKey(w http.ResponseWriter, r *http.Request) {
	g, err := s.groupParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ns, err := s.noteSigner(g)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sig, err := s.cfg.TLS.Sign(transparency.EndorsementStatement(ns.vkey))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, client.NoteKey{Origin: ns.origin, VerifierKey: ns.vkey, Node: s.cfg.TLS.Identity().Name,
		CertChain: s.cfg.TLS.ChainDER(), Endorsement: sig})
}

// tile answers a C2SP tile of group g's log: tile/L/N[.p/W] holds the
// hashes of W perfect subtrees at Merkle level 8L from index N*256. A
// tile, full or partial, never changes once it exists; a full tile is
// cacheable for good. Entry bundles (tile/entries/...) are not served:
// entries over 64 KiB do not fit their length prefix, and some entries
// are shares only their readers may see.
func (s *Server) tile(w http.ResponseWriter, r *http.Request) {
	g, err := s.groupParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	t, err := transparency.ParseTile(r.PathValue("path"))
	if err != nil {
		s.fail(w, r, fmt.Errorf("%w: %v (entry bundles are not served)", cluster.ErrNotFound, err))
		return
	}
	lv, err := level(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	hashes, err := s.tileHashes(r, g, t, lv)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if t.W == transparency.TileWidth {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "public, max-age=60")
	}
	_, _ = w.Write(transparency.TileHashes(hashes))
}

// tileHashes reads tile t's hashes: today the perfect-subtree nodes the
// chain store keeps, read W at a time. A store that keeps C2SP tiles
// itself would be read here instead.
func (s *Server) tileHashes(r *http.Request, g int, t tlog.Tile, lv cluster.Level) ([]chain.Hash, error) {
	level, from, count := transparency.TileRange(t)
	hs, err := s.ledger.LogNodes(r.Context(), g, level, from, count, lv)
	if errors.Is(err, cluster.ErrBadRequest) {
		return nil, fmt.Errorf("%w: tile %s is past group %d's log: %v", cluster.ErrNotFound, transparency.TilePath(t), g, err)
	}
	return hs, err
}
