package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"

	"qledger/shard"
	"qledger/sharing"
)

// Errors of the shared-data flow.
var (
	// ErrTooFewGroups: fewer than t groups returned a verified share.
	ErrTooFewGroups = errors.New("qledger: too few groups returned a valid share")
	// ErrDigest: the recovered data does not match the item's digest.
	ErrDigest = errors.New("qledger: recovered data does not match its digest")
)

// PutOptions say how to share data.
type PutOptions struct {
	// Threshold t: any t shares recover the data.
	Threshold int
	// Shares n (one per group 0..n-1); 0 means every group of the cluster.
	Shares int
	// Scheme is "dispersal" (default), "paper" or "asmuth-bloom".
	Scheme      string
	Description string
	// Readers may fetch the shares; empty means anyone.
	Readers []string
	// DataID names the item; empty draws a random one.
	DataID string
	// Caller is sent as the caller identity (X-Qledger-Caller).
	Caller string
	// Progress, if set, is called after each committed segment.
	Progress func(done, total int)
}

// PutResult describes a stored item.
type PutResult struct {
	DataID string
	Shares int
	// Digest is the item's digest as recorded on every share.
	Digest []byte
	// Receipts holds, per share, the receipts of its segments.
	Receipts [][]Receipt
	// Bytes is the total of all shares (the storage the split costs).
	Bytes int64
}

func (c *Client) withCaller(caller string) http.Header {
	if caller == "" {
		return nil
	}
	return http.Header{"X-Qledger-Caller": []string{caller}}
}

// PutData splits data on the client (the plaintext never leaves it in
// dispersal mode) and stores share i in group i, each share in segments of
// at most shard.MaxSegmentBytes, one transaction each.
func (c *Client) PutData(ctx context.Context, data []byte, opt PutOptions) (PutResult, error) {
	if opt.Shares == 0 {
		st, err := c.Cluster(ctx)
		if err != nil {
			return PutResult{}, err
		}
		opt.Shares = len(st.Groups)
	}
	if opt.Scheme == "" {
		opt.Scheme = sharing.Dispersal.String()
	}
	scheme, err := sharing.ParseScheme(opt.Scheme)
	if err != nil {
		return PutResult{}, err
	}
	if opt.DataID == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return PutResult{}, err
		}
		opt.DataID = hex.EncodeToString(b[:])
	}
	if err := shard.ValidDataID(opt.DataID); err != nil {
		return PutResult{}, err
	}
	so := sharing.DefaultOptions(opt.Threshold, opt.Shares)
	so.Scheme = scheme
	shares, sum, err := sharing.Split(data, so)
	if err != nil {
		return PutResult{}, err
	}
	res := PutResult{DataID: opt.DataID, Shares: opt.Shares, Digest: sum.Digest, Receipts: make([][]Receipt, len(shares))}
	var (
		recs  [][]shard.Record
		total int
	)
	for _, sh := range shares {
		enc, err := sh.MarshalBinary()
		if err != nil {
			return res, err
		}
		res.Bytes += int64(len(enc))
		tmpl := shard.Record{DataID: opt.DataID, Index: sh.Index, Shares: sh.Total, Threshold: sh.Threshold, Scheme: scheme.String(),
			ShareHash: sh.Hash, Description: opt.Description, Digest: sum.Digest, Readers: opt.Readers}
		r := shard.Split(tmpl, enc)
		recs = append(recs, r)
		total += len(r)
	}
	var (
		mu    sync.Mutex
		done  int
		first error
		wg    sync.WaitGroup
	)
	for i, rs := range recs {
		wg.Add(1)
		go func(i int, rs []shard.Record) {
			defer wg.Done()
			for _, r := range rs {
				up := ShareUpload{Shares: r.Shares, Threshold: r.Threshold, Scheme: r.Scheme, Segment: r.Segment, Segments: r.Segments,
					ShareSize: r.ShareSize, ShareHash: hex.EncodeToString(r.ShareHash[:]), Description: r.Description, Digest: r.Digest, Readers: r.Readers, Bytes: r.Bytes}
				var rc Receipt
				_, err := c.do(ctx, http.MethodPost, fmt.Sprintf("/v1/data/%s/shares/%d", url.PathEscape(opt.DataID), i), c.withCaller(opt.Caller), up, &rc)
				mu.Lock()
				if err != nil {
					if first == nil {
						first = fmt.Errorf("qledger: share %d segment %d: %w", i, r.Segment, err)
					}
					mu.Unlock()
					return
				}
				res.Receipts[i] = append(res.Receipts[i], rc)
				done++
				if opt.Progress != nil {
					opt.Progress(done, total)
				}
				mu.Unlock()
			}
		}(i, rs)
	}
	wg.Wait()
	return res, first
}

// GetShare fetches share i of an item from group i and verifies it: every
// segment's transaction hashes to its ID and is included, by its proof, in
// the log of the group head the server returned; the segments form the
// share the records announce; the share's own hash verifies. The head
// itself is the serving node's; compare it with heads from other nodes
// (or signed heads) to rule out a node lying about its whole chain.
func (c *Client) GetShare(ctx context.Context, dataID string, i int, caller string, level Level) (*sharing.Share, DataItem, error) {
	var dl ShareDownload
	p := withQuery(fmt.Sprintf("/v1/data/%s/shares/%d", url.PathEscape(dataID), i), levelQuery(level))
	if _, err := c.do(ctx, http.MethodGet, p, c.withCaller(caller), nil, &dl); err != nil {
		return nil, DataItem{}, err
	}
	item := dl.Item
	if item.DataID != dataID || item.Index != i || len(dl.Segments) != item.Segments {
		return nil, item, fmt.Errorf("%w: share %d of %s: the answer describes another share", ErrVerify, i, dataID)
	}
	var buf bytes.Buffer
	for k, seg := range dl.Segments {
		if err := VerifyTxAgainstHead(seg, dl.Head); err != nil {
			return nil, item, fmt.Errorf("share %d segment %d: %w", i, k, err)
		}
		rec, err := shard.Decode(seg.Tx.Payload)
		if err != nil {
			return nil, item, fmt.Errorf("%w: share %d segment %d: %v", ErrVerify, i, k, err)
		}
		if rec.DataID != dataID || rec.Index != i || rec.Segment != k || rec.Segments != item.Segments || hex.EncodeToString(rec.ShareHash[:]) != item.ShareHash {
			return nil, item, fmt.Errorf("%w: share %d segment %d belongs elsewhere", ErrVerify, i, k)
		}
		buf.Write(rec.Bytes)
	}
	if int64(buf.Len()) != item.ShareSize {
		return nil, item, fmt.Errorf("%w: share %d is %d bytes, records say %d", ErrVerify, i, buf.Len(), item.ShareSize)
	}
	sh, err := sharing.DecodeShare(buf.Bytes())
	if err != nil {
		return nil, item, fmt.Errorf("%w: share %d: %v", ErrVerify, i, err)
	}
	if err := sh.Verify(); err != nil || hex.EncodeToString(sh.Hash[:]) != item.ShareHash || sh.Index != i {
		return nil, item, fmt.Errorf("%w: share %d does not match its hash: %v", ErrVerify, i, err)
	}
	return sh, item, nil
}

// GetReport says which groups gave a verified share and why others did not.
type GetReport struct {
	Used   []int
	Failed map[int]string
	Item   DataItem
}

// FetchShares fetches and verifies shares from groups 0..n-1 in parallel
// (n from the first answer, or from groups), retrying a failed group once
// at level stale, which another replica may answer.
func (c *Client) FetchShares(ctx context.Context, dataID, caller string, groups int) ([]*sharing.Share, GetReport, error) {
	rep := GetReport{Failed: map[int]string{}}
	type got struct {
		i    int
		sh   *sharing.Share
		item DataItem
		err  error
	}
	ch := make(chan got, groups)
	for i := 0; i < groups; i++ {
		go func(i int) {
			sh, item, err := c.GetShare(ctx, dataID, i, caller, "")
			if err != nil && !errors.Is(err, ErrNotFound) {
				if sh2, item2, err2 := c.GetShare(ctx, dataID, i, caller, "stale"); err2 == nil {
					sh, item, err = sh2, item2, nil
				}
			}
			ch <- got{i, sh, item, err}
		}(i)
	}
	var shares []*sharing.Share
	for k := 0; k < groups; k++ {
		g := <-ch
		if g.err != nil {
			rep.Failed[g.i] = g.err.Error()
			continue
		}
		rep.Used = append(rep.Used, g.i)
		rep.Item = g.item
		shares = append(shares, g.sh)
	}
	sort.Ints(rep.Used)
	if len(shares) == 0 {
		return nil, rep, fmt.Errorf("%w: no group returned a share of %s (%s)", ErrTooFewGroups, dataID, describeFailures(rep.Failed))
	}
	if len(shares) < rep.Item.Threshold {
		return nil, rep, fmt.Errorf("%w: %d of the %d needed: groups %v answered; %s", ErrTooFewGroups, len(shares), rep.Item.Threshold, rep.Used, describeFailures(rep.Failed))
	}
	return shares, rep, nil
}

func describeFailures(f map[int]string) string {
	if len(f) == 0 {
		return "no failures"
	}
	var gs []int
	for g := range f {
		gs = append(gs, g)
	}
	sort.Ints(gs)
	var parts []string
	for _, g := range gs {
		parts = append(parts, fmt.Sprintf("group %d: %s", g, f[g]))
	}
	return strings.Join(parts, "; ")
}

// GetData fetches at least t verified shares from distinct groups,
// recovers the data and checks it against the item's digest.
func (c *Client) GetData(ctx context.Context, dataID, caller string) ([]byte, GetReport, error) {
	st, err := c.Cluster(ctx)
	if err != nil {
		return nil, GetReport{}, err
	}
	shares, rep, err := c.FetchShares(ctx, dataID, caller, len(st.Groups))
	if err != nil {
		return nil, rep, err
	}
	data, sum, err := sharing.Recover(shares)
	if err != nil {
		return nil, rep, err
	}
	if rep.Item.Digest != nil && !bytes.Equal(sum.Digest, rep.Item.Digest) {
		return nil, rep, fmt.Errorf("%w: %s", ErrDigest, dataID)
	}
	return data, rep, nil
}

// ListData lists items whose description contains filter.
func (c *Client) ListData(ctx context.Context, filter string) (DataList, error) {
	var out DataList
	p := "/v1/data"
	if filter != "" {
		p += "?description=" + url.QueryEscape(filter)
	}
	_, err := c.do(ctx, http.MethodGet, p, nil, nil, &out)
	return out, err
}
