package client

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
	ErrTooFewGroups = errors.New("client: too few groups returned a valid share")
	// ErrDigest: the recovered data does not match the digest recorded in
	// the item's verified shard records.
	ErrDigest = errors.New("client: recovered data does not match its digest")
	// ErrDisagree: enough shares verified, but no t of them are of one
	// upload (their records or splits differ: several uploads under one
	// data ID).
	ErrDisagree = errors.New("client: verified shares disagree on the item")
	// ErrRecover: no set of verified shares recovered the data; the
	// *RecoverError that wraps it names the sets tried.
	ErrRecover = errors.New("client: no set of verified shares recovers the data")
	// ErrOutputWritten: GetDataTo's recovery failed after writing part of
	// the data to a writer it cannot rewind, so it tried no other set of
	// shares. What was written must be discarded.
	ErrOutputWritten = errors.New("client: a failed recovery wrote to an output that cannot be rewound")
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
	// TempDir is where PutReader spools the shares; empty means
	// os.TempDir().
	TempDir string
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
	// Length is the length of the data.
	Length int64
}

func (c *Client) withCaller(caller string) http.Header {
	if caller == "" {
		return nil
	}
	return http.Header{"X-Qledger-Caller": []string{caller}}
}

// PutData splits data on the client (the plaintext never leaves it in
// dispersal mode) and stores share i in group i, each share in segments of
// at most shard.MaxSegmentBytes, one transaction each. It holds all the
// shares in memory; PutReader does not.
func (c *Client) PutData(ctx context.Context, data []byte, opt PutOptions) (PutResult, error) {
	opt, so, err := c.putDefaults(ctx, opt)
	if err != nil {
		return PutResult{}, err
	}
	shares, sum, err := sharing.Split(data, so)
	if err != nil {
		return PutResult{}, err
	}
	enc := make([]encodedShare, len(shares))
	for i, sh := range shares {
		b, err := sh.MarshalBinary()
		if err != nil {
			return PutResult{}, err
		}
		enc[i] = encodedShare{hash: sh.Hash, size: int64(len(b)), r: bytes.NewReader(b)}
	}
	return c.upload(ctx, opt, sum, enc)
}

// putDefaults fills in the defaults of opt (every group, dispersal, a
// random data ID), checks it and returns the split options.
func (c *Client) putDefaults(ctx context.Context, opt PutOptions) (PutOptions, sharing.Options, error) {
	if opt.Shares == 0 {
		st, err := c.Cluster(ctx)
		if err != nil {
			return opt, sharing.Options{}, err
		}
		opt.Shares = len(st.Groups)
	}
	if opt.Scheme == "" {
		opt.Scheme = sharing.Dispersal.String()
	}
	scheme, err := sharing.ParseScheme(opt.Scheme)
	if err != nil {
		return opt, sharing.Options{}, err
	}
	opt.Scheme = scheme.String()
	if opt.DataID == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return opt, sharing.Options{}, err
		}
		opt.DataID = hex.EncodeToString(b[:])
	}
	if err := shard.ValidDataID(opt.DataID); err != nil {
		return opt, sharing.Options{}, err
	}
	so := sharing.DefaultOptions(opt.Threshold, opt.Shares)
	so.Scheme = scheme
	return opt, so, so.Validate()
}

// encodedShare is one encoded share to upload: share i of the split,
// size bytes read from r.
type encodedShare struct {
	hash [32]byte
	size int64
	r    io.ReaderAt
}

// upload stores share i in group i, all shares in parallel, each one's
// segments in order. It holds one segment per share at a time.
func (c *Client) upload(ctx context.Context, opt PutOptions, sum sharing.Summary, shares []encodedShare) (PutResult, error) {
	res := PutResult{DataID: opt.DataID, Shares: opt.Shares, Digest: sum.Digest, Receipts: make([][]Receipt, len(shares)), Length: sum.Length}
	total := 0
	for i, sh := range shares {
		segs := segmentsOf(sh.size)
		if segs > shard.MaxSegments {
			return res, fmt.Errorf("client: share %d of %d bytes needs %d segments, more than %d", i, sh.size, segs, shard.MaxSegments)
		}
		res.Bytes += sh.size
		total += segs
	}
	var (
		mu    sync.Mutex
		done  int
		first error
		wg    sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = err
		}
	}
	for i, sh := range shares {
		wg.Add(1)
		go func() {
			defer wg.Done()
			up := ShareUpload{Shares: sum.Shares, Threshold: sum.Threshold, Scheme: sum.Scheme.String(), Segments: segmentsOf(sh.size),
				ShareSize: sh.size, ShareHash: hex.EncodeToString(sh.hash[:]), Description: opt.Description, Digest: sum.Digest, Readers: opt.Readers}
			buf := make([]byte, min(sh.size, shard.MaxSegmentBytes))
			for k := range up.Segments {
				off := int64(k) * shard.MaxSegmentBytes
				n := min(sh.size-off, shard.MaxSegmentBytes)
				if m, err := sh.r.ReadAt(buf[:n], off); int64(m) != n {
					fail(fmt.Errorf("client: share %d segment %d: read: %w", i, k, cmp.Or(err, io.ErrUnexpectedEOF)))
					return
				}
				up.Segment, up.Bytes = k, buf[:n]
				var rc Receipt
				_, err := c.do(ctx, http.MethodPost, fmt.Sprintf("/v1/data/%s/shares/%d", url.PathEscape(opt.DataID), i), c.withCaller(opt.Caller), up, &rc)
				if err != nil {
					fail(fmt.Errorf("client: share %d segment %d: %w", i, k, err))
					return
				}
				mu.Lock()
				res.Receipts[i] = append(res.Receipts[i], rc)
				done++
				if opt.Progress != nil {
					opt.Progress(done, total)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return res, first
}

// segmentsOf is the number of segments of a share of size bytes.
func segmentsOf(size int64) int {
	return int((size + shard.MaxSegmentBytes - 1) / shard.MaxSegmentBytes)
}

// GetReport says which groups gave the shares used and why others were
// not used.
type GetReport struct {
	// Used lists, ascending, the groups whose shares FetchShares returned
	// or GetData recovered from. GetDataTo recovers from, and lists, the
	// t lowest groups of a set (all of them in asmuth-bloom mode): the
	// shares sharing.RecoverStream reads.
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
	// Length is the length of the data recovered (GetData, GetDataTo).
	Length int64
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

// fetchVerified fetches and verifies (GetShare) share i from group i for
// every group, and says why each group that gave none did not.
func (c *Client) fetchVerified(ctx context.Context, dataID, caller string, groups int) ([]verifiedShare, map[int]string) {
	return fetchAll(groups, func(i int, level Level) (verifiedShare, error) {
		sh, item, err := c.GetShare(ctx, dataID, i, caller, level)
		if err != nil {
			return verifiedShare{}, err
		}
		return verifiedShare{group: i, splitID: sh.SplitID, share: sh, item: item}, nil
	})
}

// fetchAll gets share i from group i with get for every group in
// parallel, retrying a failed group once at level stale (unless the share
// was not found), and says why each group that gave none did not.
func fetchAll(groups int, get func(i int, level Level) (verifiedShare, error)) ([]verifiedShare, map[int]string) {
	type got struct {
		group int
		v     verifiedShare
		err   error
	}
	ch := make(chan got, groups)
	for i := 0; i < groups; i++ {
		go func() {
			v, err := get(i, "")
			if err != nil && !errors.Is(err, ErrNotFound) {
				if v2, err2 := get(i, "stale"); err2 == nil {
					v, err = v2, nil
				}
			}
			ch <- got{i, v, err}
		}()
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
		vs = append(vs, g.v)
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
	var mr *memRecoverer
	err = recoverSets(dataID, sets, &rep, func(s *shareSet) recoverer {
		mr = &memRecoverer{set: s}
		return mr
	})
	if err != nil {
		return nil, rep, err
	}
	return mr.data, rep, nil
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
