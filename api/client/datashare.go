package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strconv"

	"qledger/chain"
	"qledger/shard"
	"qledger/sharing"
)

// GetShare fetches share i of an item from group i and verifies it from
// the proven transaction bytes alone: nothing the server says about the
// item (ShareDownload.Item) or decodes for people (TxResponse.Tx) is
// trusted. It fetches the share page by page (fetchShare), a page at most
// sharePageSegments segments, and holds it whole. It guarantees that
//
//   - the head served with each page is group i's and its fields hash to
//     its block hash;
//   - every segment's transaction bytes hash to its ID and are included,
//     by its proof, in the log of the head served with its page (pages
//     may come with different heads: the group may commit in between);
//   - every transaction is a shard transaction (chain.TxShard) of group i
//     whose record is segment k of share i of dataID, the k-th segment
//     served (so the pages join without a gap or overlap), and all
//     records agree on the item (t, n, scheme, segment count, share size
//     and hash, description, digest, readers);
//   - the segments join into a share whose own hash verifies and equals
//     the recorded one, with the recorded index, t, n and scheme.
//
// The DataItem returned is built from the verified records; only Height
// (the block of the first segment) and Uploader (the first segment's) are
// as the server states them. A failed check wraps ErrVerify; an API
// error (ErrNotFound, a 403 for a caller not on the reader list) is
// returned as it is.
//
// The heads themselves are the serving node's; compare them with heads
// from other nodes (or signed heads) to rule out a node lying about its
// whole chain.
func (c *Client) GetShare(ctx context.Context, dataID string, i int, caller string, level Level) (*sharing.Share, DataItem, error) {
	var buf bytes.Buffer
	sc, err := c.fetchShare(ctx, dataID, i, caller, level, func(b []byte) error {
		buf.Write(b)
		return nil
	})
	if err != nil {
		return nil, DataItem{}, err
	}
	sh, err := sharing.DecodeShare(buf.Bytes())
	if err != nil {
		return nil, DataItem{}, sc.bad("%v", err)
	}
	if err := sh.Verify(); err != nil {
		return nil, DataItem{}, sc.bad("%v", err)
	}
	if err := sc.checkShare(sh.Index, sh.Threshold, sh.Total, sh.Scheme, sh.Hash); err != nil {
		return nil, DataItem{}, err
	}
	return sh, sc.item(), nil
}

// sharePageSegments is how many segments the client asks for in one page
// of a share: the most a node serves in one (cluster.MaxItemPageSegments).
const sharePageSegments = 16

// sharePagePath is the path of the page of share i of dataID holding
// segments from..from+limit-1.
func sharePagePath(dataID string, i int, level Level, from, limit int) string {
	return withQuery(fmt.Sprintf("/v1/data/%s/shares/%d", url.PathEscape(dataID), i),
		"from="+strconv.Itoa(from), "limit="+strconv.Itoa(limit), levelQuery(level))
}

// fetchShare fetches share i of dataID from group i page by page, each
// page from the segment after the last one checked until the records'
// segment count is reached, and checks every page and segment by
// GetShare's rules as it arrives, handing each segment's share bytes, in
// order, to write. It holds one segment at a time. It returns the checker,
// whose finish has passed, for the checks of the joined share; write's
// errors are returned as they are.
func (c *Client) fetchShare(ctx context.Context, dataID string, i int, caller string, level Level, write func([]byte) error) (*shareChecker, error) {
	sc := &shareChecker{dataID: dataID, group: i}
	for sc.segs == 0 || sc.segs < sc.first.Segments {
		path := sharePagePath(dataID, i, level, sc.segs, sharePageSegments)
		resp, err := c.openGet(ctx, path, c.withCaller(caller))
		if err != nil {
			return nil, err
		}
		sc.startPage()
		err = decodeDownload(resp.Body, path, sc.setHead, func(seg TxResponse) error {
			b, err := sc.segment(seg)
			if err != nil {
				return err
			}
			return write(b)
		})
		resp.Body.Close()
		if err == nil {
			err = sc.endPage()
		}
		if err != nil {
			return nil, err
		}
	}
	return sc, sc.finish()
}

// shareChecker applies GetShare's rules to one share's download piece by
// piece, so that the share need not be held whole: for each page,
// startPage, setHead (before or after the page's segments), segment for
// each segment in order, endPage; after the last page finish, then
// checkShare with the fields of the share the segments joined into. Every
// method returns an error wrapping ErrVerify on a failed check; the
// download must then be discarded.
type shareChecker struct {
	dataID string
	group  int
	// head is the current page's, nil until it is served.
	head *Head
	// segs counts the segments checked, size their bytes; first is the
	// record of segment 0 and height its block.
	segs   int
	size   int64
	first  shard.Record
	height uint64
	// pageStart is the segment the current page starts with; pageSize and
	// pageRoot are the log its first segment's proof is for, which every
	// other proof of the page must be for.
	pageStart int
	pageSize  uint64
	pageRoot  string
}

func (sc *shareChecker) bad(format string, args ...any) error {
	return fmt.Errorf("%w: share %d of %s: %s", ErrVerify, sc.group, sc.dataID, fmt.Sprintf(format, args...))
}

// startPage begins a page, which starts with the next segment and comes
// with its own head.
func (sc *shareChecker) startPage() {
	sc.head, sc.pageStart = nil, sc.segs
}

// setHead checks the head the page was served with: it must be the
// group's and its fields must hash to its hash; the page's segments
// checked already must have proofs for its log.
func (sc *shareChecker) setHead(h Head) error {
	if h.Group != uint32(sc.group) {
		return sc.bad("served with the head of group %d", h.Group)
	}
	if _, err := HeaderOf(h); err != nil {
		return fmt.Errorf("share %d of %s: head: %w", sc.group, sc.dataID, err)
	}
	if sc.segs > sc.pageStart {
		if err := proofForHead(sc.pageSize, sc.pageRoot, h); err != nil {
			return fmt.Errorf("share %d of %s segment %d: %w", sc.group, sc.dataID, sc.pageStart, err)
		}
	}
	sc.head = &h
	return nil
}

// segment checks the next segment and returns the share bytes its
// proven record holds.
func (sc *shareChecker) segment(seg TxResponse) ([]byte, error) {
	k := sc.segs
	rec, err := provenRecord(seg, sc.head, sc.group)
	if err == nil && sc.head == nil && k > sc.pageStart && (seg.Proof.TreeSize != sc.pageSize || seg.Proof.Root != sc.pageRoot) {
		err = fmt.Errorf("%w: proof is for log size %d root %s, segment %d's for size %d root %s", ErrVerify, seg.Proof.TreeSize, seg.Proof.Root, sc.pageStart, sc.pageSize, sc.pageRoot)
	}
	if err != nil {
		return nil, fmt.Errorf("share %d of %s segment %d: %w", sc.group, sc.dataID, k, err)
	}
	if k == sc.pageStart {
		sc.pageSize, sc.pageRoot = seg.Proof.TreeSize, seg.Proof.Root
	}
	if k == 0 {
		sc.first, sc.height = rec, seg.Height
	}
	switch {
	case rec.DataID != sc.dataID || rec.Index != sc.group:
		return nil, sc.bad("segment %d is a record of share %d of %s", k, rec.Index, rec.DataID)
	case rec.Segment != k:
		return nil, sc.bad("segment %d is recorded as segment %d", k, rec.Segment)
	case !sameItem(sc.first, rec):
		return nil, sc.bad("the record of segment %d describes another upload than segment 0's", k)
	}
	sc.segs++
	sc.size += int64(len(rec.Bytes))
	return rec.Bytes, nil
}

// endPage checks, after a page's last segment, that the page came with a
// head and at least one segment. A page may hold more segments than were
// asked for (a node that does not page serves them all): each is checked
// all the same.
func (sc *shareChecker) endPage() error {
	switch {
	case sc.head == nil:
		return sc.bad("no head served with the page from segment %d", sc.pageStart)
	case sc.segs == sc.pageStart:
		return sc.bad("no segments served from segment %d", sc.pageStart)
	}
	return nil
}

// finish checks, after the last page, that a head was served and that
// the segments are all the records say the share has.
func (sc *shareChecker) finish() error {
	switch {
	case sc.head == nil:
		return sc.bad("no head served")
	case sc.segs == 0:
		return sc.bad("no segments served")
	case sc.segs != sc.first.Segments:
		return sc.bad("%d segments served, the records say %d", sc.segs, sc.first.Segments)
	case sc.size != sc.first.ShareSize:
		return sc.bad("%d bytes, the records say %d", sc.size, sc.first.ShareSize)
	}
	return nil
}

// checkShare checks the fields of the share the segments joined into,
// whose own hash has been verified, against the records.
func (sc *shareChecker) checkShare(index, threshold, total int, scheme sharing.Scheme, hash [32]byte) error {
	first := sc.first
	switch {
	case hash != first.ShareHash:
		return sc.bad("the share hashes to %x, the records say %x", hash, first.ShareHash)
	case index != sc.group || threshold != first.Threshold || total != first.Shares || scheme.String() != first.Scheme:
		return sc.bad("the share is index %d, t=%d of n=%d, %s; the records say t=%d of n=%d, %s",
			index, threshold, total, scheme, first.Threshold, first.Shares, first.Scheme)
	}
	return nil
}

// item describes the share from its verified records.
func (sc *shareChecker) item() DataItem { return itemOf(sc.first, sc.group, sc.height) }

// provenRecord checks that seg is a shard transaction of group g with a
// valid inclusion proof, for head's log if head is not nil, and returns
// its record, decoded from the proven bytes.
func provenRecord(seg TxResponse, head *Head, g int) (shard.Record, error) {
	if seg.Withheld {
		return shard.Record{}, fmt.Errorf("%w: the transaction was withheld", ErrVerify)
	}
	verify := VerifyTx
	if head != nil {
		verify = func(r TxResponse) error { return VerifyTxAgainstHead(r, *head) }
	}
	if err := verify(seg); err != nil {
		return shard.Record{}, err
	}
	tx, err := chain.DecodeTx(seg.TxBytes)
	if err != nil {
		return shard.Record{}, fmt.Errorf("%w: %v", ErrVerify, err)
	}
	if tx.Kind != chain.TxShard {
		return shard.Record{}, fmt.Errorf("%w: a %s transaction, not a shard", ErrVerify, tx.Kind)
	}
	if tx.Group != uint32(g) {
		return shard.Record{}, fmt.Errorf("%w: a transaction of group %d", ErrVerify, tx.Group)
	}
	rec, err := shard.Decode(tx.Payload)
	if err != nil {
		return shard.Record{}, fmt.Errorf("%w: %v", ErrVerify, err)
	}
	return rec, nil
}

// proofForHead checks that a proof for the log of the given size and
// root is one for head's log, as VerifyTxAgainstHead does.
func proofForHead(size uint64, root string, head Head) error {
	if size != head.LogSize || root != head.LogRoot {
		return fmt.Errorf("%w: proof is for log size %d root %s, head %d has size %d root %s", ErrVerify, size, root, head.Height, head.LogSize, head.LogRoot)
	}
	return nil
}

// sameItem reports whether two segments' records describe the same share
// of the same upload: every field but the segment, its bytes and the
// uploader (the node records the caller's address, which may change from
// one segment's request to the next).
func sameItem(a, b shard.Record) bool {
	return a.DataID == b.DataID && a.Index == b.Index && a.Shares == b.Shares && a.Threshold == b.Threshold &&
		a.Scheme == b.Scheme && a.Segments == b.Segments && a.ShareSize == b.ShareSize && a.ShareHash == b.ShareHash &&
		a.Description == b.Description && bytes.Equal(a.Digest, b.Digest) && slices.Equal(a.Readers, b.Readers)
}

// itemOf describes group g's share from its verified record.
func itemOf(r shard.Record, g int, height uint64) DataItem {
	return DataItem{DataID: r.DataID, Group: g, Index: r.Index, Shares: r.Shares, Threshold: r.Threshold, Scheme: r.Scheme,
		Segments: r.Segments, ShareSize: r.ShareSize, ShareHash: hex.EncodeToString(r.ShareHash[:]), Uploader: r.Uploader,
		Description: r.Description, Digest: r.Digest, Readers: r.Readers, Height: height}
}
