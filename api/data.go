package api

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"

	"qledger/api/client"
	"qledger/chain"
	"qledger/cluster"
	"qledger/fsm"
	"qledger/shard"
)

// CallerHeader names the caller for the shared-data reader check on a
// cluster without a CA. With TLS it is ignored: the caller is the client
// certificate's common name.
const CallerHeader = "X-Qledger-Caller"

func (s *Server) dataRoutes() {
	s.route("POST", "/v1/data/{id}/shares/{i}", writers, s.putShare)
	s.route("GET", "/v1/data/{id}/shares/{i}", readers, s.getShare)
	s.route("GET", "/v1/data", readers, s.listData)
}

func (s *Server) shareParams(r *http.Request) (string, int, error) {
	id := r.PathValue("id")
	if err := shard.ValidDataID(id); err != nil {
		return "", 0, badRequest("%v", err)
	}
	i, err := strconv.Atoi(r.PathValue("i"))
	if err != nil || i < 0 || i >= s.ledger.Groups() {
		return "", 0, badRequest("share index %q: the cluster has groups 0..%d", r.PathValue("i"), s.ledger.Groups()-1)
	}
	return id, i, nil
}

// putShare commits one segment of share i to group i. The transaction's
// idempotency key is fixed by (data ID, share, segment), so a retry of the
// same segment returns the same receipt and a different body under the
// same name is refused with 422: a stored share cannot be overwritten.
func (s *Server) putShare(w http.ResponseWriter, r *http.Request) {
	id, i, err := s.shareParams(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var up client.ShareUpload
	if err := decodeStrict(r.Body, &up); err != nil {
		s.fail(w, r, err)
		return
	}
	hash, err := hex.DecodeString(up.ShareHash)
	if err != nil || len(hash) != 32 {
		s.fail(w, r, badRequest("share_hash must be 64 hex digits"))
		return
	}
	if up.Shares > s.ledger.Groups() {
		s.fail(w, r, badRequest("%d shares but the cluster has %d groups", up.Shares, s.ledger.Groups()))
		return
	}
	rec := shard.Record{DataID: id, Index: i, Shares: up.Shares, Threshold: up.Threshold, Scheme: up.Scheme,
		Segment: up.Segment, Segments: up.Segments, ShareSize: up.ShareSize, Uploader: s.uploader(r),
		Description: up.Description, Digest: up.Digest, Readers: up.Readers, Bytes: up.Bytes}
	copy(rec.ShareHash[:], hash)
	if err := rec.Validate(); err != nil {
		s.fail(w, r, badRequest("%v", err))
		return
	}
	key := fmt.Sprintf("shard/%s/%d/%d", id, i, up.Segment)
	res, err := s.ledger.Submit(r.Context(), chain.Tx{Kind: chain.TxShard, Group: uint32(i), IdempotencyKey: key, Submitter: submitter(r), Payload: rec.Encode()})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if res.Duplicate {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusOK, client.Receipt{ID: res.ID.String(), Group: res.Group, Height: res.Height, Index: res.Index})
}

// uploader names who uploaded a share: the certificate's common name
// with TLS, else the caller header or the remote address.
func (s *Server) uploader(r *http.Request) string {
	if c := s.readerName(r); c != "" {
		return c
	}
	return r.RemoteAddr
}

func itemWire(m fsm.ItemMeta, group int) client.DataItem {
	return client.DataItem{DataID: m.DataID, Group: group, Index: m.Index, Shares: m.Shares, Threshold: m.Threshold, Scheme: m.Scheme,
		Segments: m.Segments, ShareSize: m.ShareSize, ShareHash: m.ShareHash.String(), Uploader: m.Uploader,
		Description: m.Description, Digest: m.Digest, Readers: m.Readers, Height: m.Height}
}

// getShare serves share i of an item from group i, to callers on the
// reader list: the item as the group stores it, segments of the share as
// transactions with inclusion proofs, and the group's head, which the
// proofs are for (if the group commits a block between reading the
// segments and the head, both are read again, up to pageTries times in
// all). Query parameters:
//
//   - from=K and limit=L page the read: segments K..K+L-1 are served,
//     fewer if the share ends sooner. K must be a segment of the share
//     (0 <= K < segments) and L in 1..cluster.MaxItemPageSegments, else
//     the answer is 400; either may be left out (K defaults to 0, L to
//     cluster.MaxItemPageSegments). Each page comes with the head current
//     when it was read, so the pages of one share may come with
//     different heads.
//   - Without from and limit the whole share is served if it has at most
//     cluster.MaxItemPageSegments segments. A larger one is refused with
//     413, saying to page: its answer, and the read relayed from another
//     group's node, would be too large for one piece.
//   - level is the read consistency level (stale, default, linearizable).
func (s *Server) getShare(w http.ResponseWriter, r *http.Request) {
	id, i, err := s.shareParams(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	from, limit, paged, err := pageParams(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	lv, err := level(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	meta, segs, err := s.data.ItemPage(r.Context(), i, id, from, limit, lv)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if name := s.readerName(r); !meta.CanRead(name) {
		writeError(w, http.StatusForbidden, codeForbidden, fmt.Sprintf("caller %q is not on the reader list of %s", name, id))
		return
	}
	if !paged && len(segs) < meta.Segments {
		s.fail(w, r, fmt.Errorf("%w: share %d of %s has %d segments, more than one answer carries (%d): fetch it in pages with ?from=K&limit=L, L at most %d",
			cluster.ErrTooLarge, i, id, meta.Segments, cluster.MaxItemPageSegments, cluster.MaxItemPageSegments))
		return
	}
	head, ok, err := s.ledger.Head(r.Context(), i, lv)
	// A block committed between the two reads leaves the proofs for an
	// older head than the one read: read both again.
	for try := 1; err == nil && ok && !provenAt(segs, head) && try < pageTries; try++ {
		if meta, segs, err = s.data.ItemPage(r.Context(), i, id, from, limit, lv); err != nil {
			s.fail(w, r, err)
			return
		}
		head, ok, err = s.ledger.Head(r.Context(), i, lv)
	}
	if err != nil || !ok {
		s.fail(w, r, fmt.Errorf("%w: head of group %d: %v", cluster.ErrStore, i, err))
		return
	}
	out := client.ShareDownload{Item: itemWire(meta, i), Head: client.HeadFromHeader(head)}
	for _, rec := range segs {
		f, _ := client.FieldsOf(rec.TxBytes)
		out.Segments = append(out.Segments, client.TxResponse{
			ID: rec.ID.String(), Group: i, Height: rec.Location.Height, Index: rec.Location.Index,
			TxBytes: rec.TxBytes, LeafHash: rec.LeafHash.String(),
			Proof: client.Proof{LeafIndex: rec.Location.Index, TreeSize: rec.TreeSize, Root: rec.Root.String(), Hashes: hexes(rec.Proof)},
			Tx:    f,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// pageTries is how many times getShare reads a page and the head before
// it serves them even if the proofs are for another head.
const pageTries = 3

// pageParams reads getShare's from and limit; paged is false if neither
// is given, and from and limit are then the first page's.
func pageParams(r *http.Request) (from, limit int, paged bool, err error) {
	q := r.URL.Query()
	paged = q.Has("from") || q.Has("limit")
	f, err := uintParam(r, "from", 0)
	if err != nil {
		return 0, 0, false, err
	}
	l, err := uintParam(r, "limit", cluster.MaxItemPageSegments)
	if err != nil {
		return 0, 0, false, err
	}
	if l < 1 || l > cluster.MaxItemPageSegments {
		return 0, 0, false, badRequest("limit must be 1..%d segments", cluster.MaxItemPageSegments)
	}
	if f >= shard.MaxSegments {
		return 0, 0, false, badRequest("from must be below %d", shard.MaxSegments)
	}
	return int(f), int(l), paged, nil
}

// provenAt reports whether every record's proof is for head's log.
func provenAt(segs []fsm.TxRecord, head chain.Header) bool {
	for _, rec := range segs {
		if rec.TreeSize != head.LogSize || rec.Root != head.LogRoot {
			return false
		}
	}
	return true
}

// listData lists items from every group, merged by data ID.
func (s *Server) listData(w http.ResponseWriter, r *http.Request) {
	lv, err := level(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	filter := r.URL.Query().Get("description")
	byID := map[string]*client.DataListing{}
	var unreachable []int
	for g := 0; g < s.ledger.Groups(); g++ {
		items, err := s.data.Items(r.Context(), g, filter, lv)
		if err != nil {
			if errors.Is(err, cluster.ErrBadRequest) {
				s.fail(w, r, err)
				return
			}
			unreachable = append(unreachable, g)
			continue
		}
		for _, m := range items {
			l := byID[m.DataID]
			if l == nil {
				l = &client.DataListing{DataItem: itemWire(m, g)}
				byID[m.DataID] = l
			}
			l.Groups = append(l.Groups, g)
		}
	}
	out := client.DataList{Items: []client.DataListing{}, Unreachable: unreachable}
	for _, l := range byID {
		out.Items = append(out.Items, *l)
	}
	sort.Slice(out.Items, func(i, j int) bool { return out.Items[i].DataID < out.Items[j].DataID })
	writeJSON(w, http.StatusOK, out)
}
