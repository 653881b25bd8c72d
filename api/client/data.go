package client

import (
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
	// ErrDigest: the recovered data does not match the digest recorded in
	// the item's verified shard records.
	ErrDigest = errors.New("qledger: recovered data does not match its digest")
	// ErrDisagree: enough shares verified, but no t of them are of one
	// upload (their records or splits differ: several uploads under one
	// data ID).
	ErrDisagree = errors.New("qledger: verified shares disagree on the item")
	// ErrRecover: no set of verified shares recovered the data; the
	// *RecoverError that wraps it names the sets tried.
	ErrRecover = errors.New("qledger: no set of verified shares recovers the data")
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

// GetReport says which groups gave the shares used and why others were
// not used.
type GetReport struct {
	// Used lists, ascending, the groups whose shares FetchShares returned
	// or GetData recovered from.
	Used []int
	// Failed says, per group, why its share was not fetched, did not
	// verify, or was not used.
	Failed map[int]string
	// Item describes the item as the verified shard records of the used
	// shares (the lowest group's) record it; never as the server states.
	Item DataItem
	// DigestChecked: GetData checked the recovered data against the
	// digest recorded on every used share. False when the records carry
	// no digest (asmuth-bloom mode, or an uploader that gave none): the
	// data was then checked only by the scheme's own authentication.
	DigestChecked bool
}

// FetchShares fetches and verifies (GetShare) shares from groups
// 0..groups-1 in parallel, retrying a failed group once at level stale,
// which another replica may answer. Shares whose records disagree on t,
// n, scheme or digest, or whose split IDs differ, are of different uploads
// under the same ID: FetchShares returns those of the largest such set
// (of equal ones, the one with the lowest group) and names the other
// groups in the report. It fails with ErrTooFewGroups when fewer shares
// verified than t, with ErrDisagree when enough did but no t of them are
// of one upload; the shares of the largest set are returned even then.
func (c *Client) FetchShares(ctx context.Context, dataID, caller string, groups int) ([]*sharing.Share, GetReport, error) {
	vs, failed := c.fetchVerified(ctx, dataID, caller, groups)
	rep := GetReport{Failed: failed}
	sets := partition(vs)
	if len(sets) == 0 {
		return nil, rep, checkEnough(dataID, sets, failed)
	}
	best := sets[0]
	for _, s := range sets {
		if s.enough() {
			best = s
			break
		}
	}
	rep.Used, rep.Item = best.groups, best.item
	err := checkEnough(dataID, sets, failed)
	noteOthers(sets, best, failed)
	return best.shares, rep, err
}

// fetchVerified fetches and verifies share i from group i for every
// group, and says why each group that gave none did not.
func (c *Client) fetchVerified(ctx context.Context, dataID, caller string, groups int) ([]verifiedShare, map[int]string) {
	type got struct {
		verifiedShare
		err error
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
			ch <- got{verifiedShare{i, sh, item}, err}
		}(i)
	}
	var (
		vs     []verifiedShare
		failed = map[int]string{}
	)
	for range groups {
		g := <-ch
		if g.err != nil {
			failed[g.group] = g.err.Error()
			continue
		}
		vs = append(vs, g.verifiedShare)
	}
	return vs, failed
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

// GetData fetches and verifies (GetShare) a share from every group,
// recovers the data from the shares of one upload and checks it against
// the digest their records carry (see GetReport.DigestChecked for items
// without one). Threshold and digest come from the verified records,
// never from the server. If the recovery fails it tries the other
// uploads' sets and, within a set, drops bad shares and tries t-subsets
// (at most 3n recoveries in all for n groups) before it gives up with a
// *RecoverError naming every set of groups tried. With too few verified
// shares it fails as FetchShares does.
func (c *Client) GetData(ctx context.Context, dataID, caller string) ([]byte, GetReport, error) {
	st, err := c.Cluster(ctx)
	if err != nil {
		return nil, GetReport{}, err
	}
	vs, failed := c.fetchVerified(ctx, dataID, caller, len(st.Groups))
	rep := GetReport{Failed: failed}
	sets := partition(vs)
	if err := checkEnough(dataID, sets, failed); err != nil {
		return nil, rep, err
	}
	var tried []RecoverAttempt
	left := map[int]string{}
	for _, s := range sets {
		if !s.enough() {
			continue
		}
		r := recoverSet(dataID, s)
		tried = append(tried, r.attempts...)
		for g, why := range r.left {
			left[g] = why
		}
		if r.used == nil {
			continue
		}
		rep.Used, rep.Item, rep.DigestChecked = r.used, s.item, s.item.Digest != nil
		noteOthers(sets, s, failed)
		for g, why := range r.left {
			failed[g] = why
		}
		return r.data, rep, nil
	}
	for _, s := range sets {
		for _, g := range s.groups {
			if why, ok := left[g]; ok {
				failed[g] = why
			} else if !s.enough() {
				failed[g] = fmt.Sprintf("holds a share of an upload with too few shares to try (%s)", s)
			}
		}
	}
	return nil, rep, &RecoverError{DataID: dataID, Attempts: tried, Failed: failed}
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
