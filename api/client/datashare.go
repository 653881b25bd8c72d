package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"qledger/chain"
	"qledger/shard"
	"qledger/sharing"
)

// GetShare fetches share i of an item from group i and verifies it from
// the proven transaction bytes alone: nothing the server says about the
// item (ShareDownload.Item) or decodes for people (TxResponse.Tx) is
// trusted. It guarantees that
//
//   - the head served with the share is group i's and its fields hash to
//     its block hash;
//   - every segment's transaction bytes hash to its ID and are included,
//     by its proof, in that head's log;
//   - every transaction is a shard transaction (chain.TxShard) of group i
//     whose record is segment k of share i of dataID, and all records
//     agree on the item (t, n, scheme, segment count, share size and hash,
//     description, digest, readers);
//   - the segments join into a share whose own hash verifies and equals
//     the recorded one, with the recorded index, t, n and scheme.
//
// The DataItem returned is built from the verified records; only Height
// (the block of the first segment) and Uploader (the first segment's) are
// as the server states them. A failed check wraps ErrVerify; an API
// error (ErrNotFound, a 403 for a caller not on the reader list) is
// returned as it is.
//
// The head itself is the serving node's; compare it with heads from other
// nodes (or signed heads) to rule out a node lying about its whole chain.
func (c *Client) GetShare(ctx context.Context, dataID string, i int, caller string, level Level) (*sharing.Share, DataItem, error) {
	var dl ShareDownload
	p := withQuery(fmt.Sprintf("/v1/data/%s/shares/%d", url.PathEscape(dataID), i), levelQuery(level))
	if _, err := c.do(ctx, http.MethodGet, p, c.withCaller(caller), nil, &dl); err != nil {
		return nil, DataItem{}, err
	}
	return verifyShare(dl, dataID, i)
}

// verifyShare is GetShare's check of a download; see GetShare.
func verifyShare(dl ShareDownload, dataID string, i int) (*sharing.Share, DataItem, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: share %d of %s: %s", ErrVerify, i, dataID, fmt.Sprintf(format, args...))
	}
	if dl.Head.Group != uint32(i) {
		return nil, DataItem{}, bad("served with the head of group %d", dl.Head.Group)
	}
	if _, err := HeaderOf(dl.Head); err != nil {
		return nil, DataItem{}, fmt.Errorf("share %d of %s: head: %w", i, dataID, err)
	}
	if len(dl.Segments) == 0 {
		return nil, DataItem{}, bad("no segments served")
	}
	var (
		first shard.Record
		buf   bytes.Buffer
	)
	for k, seg := range dl.Segments {
		rec, err := provenRecord(seg, dl.Head, i)
		if err != nil {
			return nil, DataItem{}, fmt.Errorf("share %d of %s segment %d: %w", i, dataID, k, err)
		}
		if k == 0 {
			first = rec
		}
		switch {
		case rec.DataID != dataID || rec.Index != i:
			return nil, DataItem{}, bad("segment %d is a record of share %d of %s", k, rec.Index, rec.DataID)
		case rec.Segment != k:
			return nil, DataItem{}, bad("segment %d is recorded as segment %d", k, rec.Segment)
		case !sameItem(first, rec):
			return nil, DataItem{}, bad("the record of segment %d describes another upload than segment 0's", k)
		}
		buf.Write(rec.Bytes)
	}
	if len(dl.Segments) != first.Segments {
		return nil, DataItem{}, bad("%d segments served, the records say %d", len(dl.Segments), first.Segments)
	}
	if int64(buf.Len()) != first.ShareSize {
		return nil, DataItem{}, bad("%d bytes, the records say %d", buf.Len(), first.ShareSize)
	}
	sh, err := sharing.DecodeShare(buf.Bytes())
	if err != nil {
		return nil, DataItem{}, bad("%v", err)
	}
	if err := sh.Verify(); err != nil {
		return nil, DataItem{}, bad("%v", err)
	}
	switch {
	case sh.Hash != first.ShareHash:
		return nil, DataItem{}, bad("the share hashes to %x, the records say %x", sh.Hash, first.ShareHash)
	case sh.Index != i || sh.Threshold != first.Threshold || sh.Total != first.Shares || sh.Scheme.String() != first.Scheme:
		return nil, DataItem{}, bad("the share is index %d, t=%d of n=%d, %s; the records say t=%d of n=%d, %s",
			sh.Index, sh.Threshold, sh.Total, sh.Scheme, first.Threshold, first.Shares, first.Scheme)
	}
	return sh, itemOf(first, i, dl.Segments[0].Height), nil
}

// provenRecord checks that seg is included in head's log and is a shard
// transaction of group g, and returns its record, decoded from the
// proven bytes.
func provenRecord(seg TxResponse, head Head, g int) (shard.Record, error) {
	if seg.Withheld {
		return shard.Record{}, fmt.Errorf("%w: the transaction was withheld", ErrVerify)
	}
	if err := VerifyTxAgainstHead(seg, head); err != nil {
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
