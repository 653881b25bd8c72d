package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"qledger/chain"
	"qledger/shard"
	"qledger/sharing"
)

// dataFake is a node API serving shared data items. share answers GET
// /v1/data/{id}/shares/{i}, cut to the segments asked for by from and
// limit as a node pages; nil is a 404. page, if set, answers the paged
// requests instead (from and limit as asked, or -1 if not).
type dataFake struct {
	groups int
	share  func(id string, i int) *ShareDownload
	page   func(id string, i, from, limit int) *ShareDownload
}

// client serves f and returns a client of it.
func (f *dataFake) client(t *testing.T) *Client {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/cluster", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(ClusterStatus{Groups: make([]GroupStatus, f.groups)})
	})
	mux.HandleFunc("GET /v1/data/{id}/shares/{i}", func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.PathValue("i"))
		from, limit := intQuery(r, "from"), intQuery(r, "limit")
		var dl *ShareDownload
		switch {
		case f.page != nil:
			dl = f.page(r.PathValue("id"), i, from, limit)
		case from >= 0 || limit >= 0:
			if dl = f.share(r.PathValue("id"), i); dl != nil {
				dl.Segments = pageOf(dl.Segments, from, limit)
			}
		default:
			dl = f.share(r.PathValue("id"), i)
		}
		if dl == nil {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(ErrorBody{Code: CodeNotFound, Error: "no such item"})
			return
		}
		json.NewEncoder(w).Encode(dl)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	c, err := New(ts.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// intQuery is the integer query parameter name, -1 if it is not given.
func intQuery(r *http.Request, name string) int {
	n, err := strconv.Atoi(r.URL.Query().Get(name))
	if err != nil {
		return -1
	}
	return n
}

// pageOf cuts segs to from..from+limit-1 as a node pages: from 0 and
// limit sharePageSegments if not given (-1).
func pageOf(segs []TxResponse, from, limit int) []TxResponse {
	if from < 0 {
		from = 0
	}
	if limit < 0 {
		limit = sharePageSegments
	}
	from = min(from, len(segs))
	return segs[from:min(from+limit, len(segs))]
}

// dataUpload is one upload as PutData stores it: the shares and, per
// share, its shard records.
type dataUpload struct {
	id     string
	data   []byte
	sum    sharing.Summary
	shares []*sharing.Share
	recs   [][]shard.Record
}

func newUpload(t *testing.T, id string, data []byte, scheme sharing.Scheme, threshold, n int) *dataUpload {
	t.Helper()
	opt := sharing.DefaultOptions(threshold, n)
	opt.Scheme = scheme
	shares, sum, err := sharing.Split(data, opt)
	if err != nil {
		t.Fatal(err)
	}
	u := &dataUpload{id: id, data: data, sum: sum, shares: shares, recs: make([][]shard.Record, n)}
	for i := range shares {
		u.record(t, i)
	}
	return u
}

// record (re)makes share i's records from the share as it is now.
func (u *dataUpload) record(t *testing.T, i int) {
	t.Helper()
	sh := u.shares[i]
	enc, err := sh.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	tmpl := shard.Record{DataID: u.id, Index: i, Shares: sh.Total, Threshold: sh.Threshold, Scheme: sh.Scheme.String(),
		ShareHash: sh.Hash, Uploader: "tester", Description: "test item", Digest: u.sum.Digest}
	u.recs[i] = shard.Split(tmpl, enc)
}

// editRecords changes every record of share i.
func (u *dataUpload) editRecords(i int, edit func(*shard.Record)) {
	for k := range u.recs[i] {
		edit(&u.recs[i][k])
	}
}

// tamper changes a payload byte of share i and re-hashes it, as an
// uploader or node that knows the encoding could: the share passes its
// own checks but spoils a recovery.
func (u *dataUpload) tamper(t *testing.T, i int) {
	t.Helper()
	sh := u.shares[i]
	sh.Payload = bytes.Clone(sh.Payload)
	sh.Payload[len(sh.Payload)-1] ^= 1
	enc, err := sh.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	extra := 0
	switch sh.Scheme {
	case sharing.Paper:
		extra = 32
	case sharing.Dispersal:
		extra = 32 + 16 + 1 + 32*len(sh.Dispersal.Proof)
	}
	body := enc[:len(enc)-32]
	cut := len(body) - (8 + 2 + extra)
	shardHash := sha256.Sum256(body[:cut])
	sh.Hash = sha256.Sum256(append(shardHash[:], body[cut:]...))
	if err := sh.Verify(); err != nil {
		t.Fatalf("re-hashed share %d does not verify: %v", i, err)
	}
	u.record(t, i)
}

// download serves share i as group i would.
func (u *dataUpload) download(t *testing.T, i int) *ShareDownload {
	t.Helper()
	var txs []chain.Tx
	for _, r := range u.recs[i] {
		txs = append(txs, shardTx(i, r))
	}
	dl := dataLog(t, uint32(i), txs)
	return &dl
}

func shardTx(g int, r shard.Record) chain.Tx {
	return chain.Tx{Kind: chain.TxShard, Group: uint32(g), Payload: r.Encode()}
}

// dataLog is what a node serves for segs at the head of a one-block log
// of group g holding a data transaction and then segs: the segments with
// proofs at that head, their fields decoded for people, and the item as
// the first segment's payload, read as a record, describes it.
func dataLog(t *testing.T, g uint32, segs []chain.Tx) ShareDownload {
	t.Helper()
	return grownLog(t, g, segs, 0)
}

// grownLog is dataLog for a log that has grown by after more data
// transactions since segs: the proofs and head are for the grown log.
func grownLog(t *testing.T, g uint32, segs []chain.Tx, after int) ShareDownload {
	t.Helper()
	raw := [][]byte{(&chain.Tx{Kind: chain.TxData, Group: g, Payload: []byte("before")}).Encode()}
	for k := range segs {
		raw = append(raw, segs[k].Encode())
	}
	for k := range after {
		raw = append(raw, (&chain.Tx{Kind: chain.TxData, Group: g, Payload: []byte("after " + strconv.Itoa(k))}).Encode())
	}
	leaves := make([]chain.Hash, len(raw))
	for k, b := range raw {
		leaves[k] = chain.LeafHash(b)
	}
	root := chain.RootFromLeaves(leaves)
	hd := chain.Header{Version: chain.BlockVersion, Group: g, Height: 1, Timestamp: 1, TxRoot: root, TxCount: uint32(len(raw)), LogSize: uint64(len(raw)), LogRoot: root}
	dl := ShareDownload{Head: HeadFromHeader(hd)}
	for k := 1; k <= len(segs); k++ {
		path, err := chain.InclusionProofFromLeaves(uint64(k), leaves)
		if err != nil {
			t.Fatal(err)
		}
		hashes := make([]string, len(path))
		for j, h := range path {
			hashes[j] = h.String()
		}
		f, _ := FieldsOf(raw[k])
		dl.Segments = append(dl.Segments, TxResponse{ID: chain.TxID(raw[k]).String(), Group: int(g), Height: 1, Index: uint64(k), TxBytes: raw[k],
			LeafHash: leaves[k].String(), Proof: Proof{LeafIndex: uint64(k), TreeSize: uint64(len(raw)), Root: root.String(), Hashes: hashes}, Tx: f})
	}
	if len(segs) > 0 {
		if r, err := shard.Decode(segs[0].Payload); err == nil {
			dl.Item = itemOf(r, int(g), 1)
		}
	}
	return dl
}

// TestGetShareVerifiesProvenBytes: GetShare believes only what the proven
// transaction bytes say, never the server's item or decoded fields.
func TestGetShareVerifiesProvenBytes(t *testing.T) {
	u := newUpload(t, "item-1", []byte("a shared secret, split three ways"), sharing.Dispersal, 2, 3)
	made := newUpload(t, "item-1", []byte("what the server would have us read"), sharing.Dispersal, 2, 3)
	big := newUpload(t, "big-1", bytes.Repeat([]byte("two segments "), 80000), sharing.Dispersal, 1, 2)
	if len(big.recs[0]) != 2 {
		t.Fatalf("big share has %d segments, want 2", len(big.recs[0]))
	}
	tests := []struct {
		name  string
		id    string
		share func() *ShareDownload
		// ok: the share verifies; want is then its upload.
		ok   bool
		want *dataUpload
	}{
		{name: "valid", id: u.id, ok: true, want: u, share: func() *ShareDownload { return u.download(t, 0) }},
		{name: "two segments", id: big.id, ok: true, want: big, share: func() *ShareDownload { return big.download(t, 0) }},
		{name: "the server's item and decoded fields lie", id: u.id, ok: true, want: u, share: func() *ShareDownload {
			dl := u.download(t, 0)
			dl.Item = DataItem{DataID: u.id, Index: 0, Shares: 9, Threshold: 1, Segments: 7, ShareSize: 1, ShareHash: "00", Digest: []byte("bogus")}
			dl.Segments[0].Tx.Payload = []byte("anything")
			return dl
		}},
		{name: "valid proof over unrelated bytes, made-up payload", id: u.id, share: func() *ShareDownload {
			dl := dataLog(t, 0, []chain.Tx{{Kind: chain.TxData, Group: 0, Payload: []byte("an unrelated transaction")}})
			dl.Segments[0].Tx.Payload = made.recs[0][0].Encode()
			dl.Item = itemOf(made.recs[0][0], 0, 1)
			return &dl
		}},
		{name: "shard record in a data transaction", id: u.id, share: func() *ShareDownload {
			dl := dataLog(t, 0, []chain.Tx{{Kind: chain.TxData, Group: 0, Payload: u.recs[0][0].Encode()}})
			return &dl
		}},
		{name: "transaction of another group", id: u.id, share: func() *ShareDownload {
			tx := shardTx(1, u.recs[0][0])
			dl := dataLog(t, 0, []chain.Tx{tx})
			return &dl
		}},
		{name: "head of another group", id: u.id, share: func() *ShareDownload {
			dl := dataLog(t, 1, []chain.Tx{shardTx(0, u.recs[0][0])})
			return &dl
		}},
		{name: "head fields do not hash to its hash", id: u.id, share: func() *ShareDownload {
			dl := u.download(t, 0)
			dl.Head.Timestamp++
			return dl
		}},
		{name: "record of another share", id: u.id, share: func() *ShareDownload {
			dl := dataLog(t, 0, []chain.Tx{shardTx(0, u.recs[1][0])})
			dl.Item.Index = 0
			return &dl
		}},
		{name: "record of another item", id: "item-2", share: func() *ShareDownload { return u.download(t, 0) }},
		{name: "proof for another head", id: u.id, share: func() *ShareDownload {
			dl := u.download(t, 0)
			longer := dataLog(t, 0, []chain.Tx{shardTx(0, u.recs[0][0]), {Kind: chain.TxData, Payload: []byte("after")}})
			dl.Head = longer.Head
			return dl
		}},
		{name: "altered transaction bytes", id: u.id, share: func() *ShareDownload {
			dl := u.download(t, 0)
			dl.Segments[0].TxBytes[len(dl.Segments[0].TxBytes)-1] ^= 1
			return dl
		}},
		{name: "withheld segment", id: u.id, share: func() *ShareDownload {
			dl := u.download(t, 0)
			dl.Segments[0].TxBytes, dl.Segments[0].Withheld = nil, true
			return dl
		}},
		{name: "a segment missing", id: big.id, share: func() *ShareDownload {
			dl := big.download(t, 0)
			dl.Segments = dl.Segments[:1]
			return dl
		}},
		{name: "segments out of order", id: big.id, share: func() *ShareDownload {
			dl := big.download(t, 0)
			dl.Segments[0], dl.Segments[1] = dl.Segments[1], dl.Segments[0]
			return dl
		}},
		{name: "segments disagree on the digest", id: big.id, share: func() *ShareDownload {
			r := big.recs[0][1]
			r.Digest = []byte("another digest")
			dl := dataLog(t, 0, []chain.Tx{shardTx(0, big.recs[0][0]), shardTx(0, r)})
			return &dl
		}},
		{name: "records name another share hash", id: u.id, share: func() *ShareDownload {
			r := u.recs[0][0]
			r.ShareHash[0] ^= 1
			dl := dataLog(t, 0, []chain.Tx{shardTx(0, r)})
			return &dl
		}},
		{name: "records say another threshold than the share", id: u.id, share: func() *ShareDownload {
			r := u.recs[0][0]
			r.Threshold = 3
			dl := dataLog(t, 0, []chain.Tx{shardTx(0, r)})
			return &dl
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := (&dataFake{groups: 3, share: func(string, int) *ShareDownload { return tc.share() }}).client(t)
			sh, item, err := c.GetShare(context.Background(), tc.id, 0, "", "")
			// The streaming form, which checks the share as it arrives and
			// spools it to a file, must come to the same verdict.
			dir := t.TempDir()
			v, serr := c.spoolShare(context.Background(), tc.id, 0, "", "", dir)
			if !tc.ok {
				if !errors.Is(err, ErrVerify) {
					t.Fatalf("accepted or wrong error: share %v, err %v", sh != nil, err)
				}
				if !errors.Is(serr, ErrVerify) {
					t.Fatalf("streaming: accepted or wrong error: %v", serr)
				}
				emptyDir(t, dir)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if serr != nil {
				t.Fatalf("streaming: %v", serr)
			}
			want := tc.want.shares[0]
			for _, item := range []DataItem{item, v.item} {
				if sh.Hash != want.Hash || item.ShareHash != hex.EncodeToString(want.Hash[:]) || item.Threshold != want.Threshold ||
					item.Shares != want.Total || !bytes.Equal(item.Digest, tc.want.sum.Digest) || item.Segments != len(tc.want.recs[0]) || item.Group != 0 {
					t.Fatalf("item %+v is not the recorded one", item)
				}
			}
			enc, _ := want.MarshalBinary()
			if b, err := os.ReadFile(v.file); err != nil || !bytes.Equal(b, enc) || v.splitID != want.SplitID {
				t.Fatalf("spooled share differs from the share (%v)", err)
			}
		})
	}
	c := (&dataFake{groups: 3, share: func(string, int) *ShareDownload { return nil }}).client(t)
	if _, _, err := c.GetShare(context.Background(), "item-1", 0, "", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing share: %v", err)
	}
	if _, err := c.spoolShare(context.Background(), "item-1", 0, "", "", t.TempDir()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("streaming: missing share: %v", err)
	}
}

// TestGetDataTrustsOnlyRecords: threshold and digest come from the
// verified records, and a failed recovery is retried with other sets of
// shares before GetData gives up, naming the groups.
func TestGetDataTrustsOnlyRecords(t *testing.T) {
	data := []byte("the data every case recovers, or fails to")
	type setup struct {
		groups int
		// share serves group i; nil is a 404.
		share func(i int) *ShareDownload
	}
	serve := func(ups ...*dataUpload) func(int) *ShareDownload {
		return func(i int) *ShareDownload {
			if ups[i] == nil {
				return nil
			}
			return ups[i].download(t, i)
		}
	}
	tests := []struct {
		name  string
		setup func(t *testing.T) setup
		// used: the groups recovered from, nil for a failure matching err.
		used   []int
		err    []error
		digest bool
		// failed: groups the report must give a reason for, and a word
		// of it.
		failed map[int]string
		// msg: words the error must hold.
		msg []string
		// stream is what GetDataTo gives where it differs: it recovers
		// from the t lowest shares of a set (all in asmuth-bloom mode),
		// which are all sharing.RecoverStream reads.
		stream *getWant
	}{
		{name: "all agree", used: []int{0, 1, 2}, digest: true, stream: &getWant{used: []int{0, 1}, digest: true, failed: map[int]string{2: "not needed"}}, setup: func(t *testing.T) setup {
			u := newUpload(t, "item-1", data, sharing.Dispersal, 2, 3)
			return setup{3, serve(u, u, u)}
		}},
		{name: "the server's item lies about digest and threshold", used: []int{0, 1, 2}, digest: true, stream: &getWant{used: []int{0, 1}, digest: true}, setup: func(t *testing.T) setup {
			u := newUpload(t, "item-1", data, sharing.Paper, 2, 3)
			return setup{3, func(i int) *ShareDownload {
				dl := u.download(t, i)
				dl.Item.Digest, dl.Item.Threshold = []byte("not the digest"), 1
				return dl
			}}
		}},
		{name: "the server's item says t=1 with one group up", err: []error{ErrTooFewGroups}, msg: []string{"1 of the 2 needed"}, setup: func(t *testing.T) setup {
			u := newUpload(t, "item-1", data, sharing.Dispersal, 2, 3)
			return setup{3, func(i int) *ShareDownload {
				if i > 0 {
					return nil
				}
				dl := u.download(t, i)
				dl.Item.Threshold = 1
				return dl
			}}
		}},
		{name: "records carry a wrong digest", err: []error{ErrRecover, ErrDigest}, msg: []string{"groups [0 1 2]"},
			stream: &getWant{err: []error{ErrRecover, ErrDigest}, msg: []string{"groups [0 1]", "groups [1 2]", "groups [0 2]"}}, setup: func(t *testing.T) setup {
				u := newUpload(t, "item-1", data, sharing.Dispersal, 2, 3)
				for i := range 3 {
					u.editRecords(i, func(r *shard.Record) { r.Digest = []byte("a digest of other data") })
				}
				return setup{3, serve(u, u, u)}
			}},
		{name: "no two records agree on the digest", err: []error{ErrDisagree}, msg: []string{"groups [0]", "groups [1]", "groups [2]"}, setup: func(t *testing.T) setup {
			u := newUpload(t, "item-1", data, sharing.Dispersal, 2, 3)
			u.editRecords(1, func(r *shard.Record) { r.Digest = []byte("digest one") })
			u.editRecords(2, func(r *shard.Record) { r.Digest = []byte("digest two") })
			return setup{3, serve(u, u, u)}
		}},
		{name: "one record disagrees on the digest", used: []int{0, 1}, digest: true, failed: map[int]string{2: "another upload"}, setup: func(t *testing.T) setup {
			u := newUpload(t, "item-1", data, sharing.Paper, 2, 3)
			u.editRecords(2, func(r *shard.Record) { r.Digest = []byte("another digest") })
			return setup{3, serve(u, u, u)}
		}},
		{name: "asmuth-bloom records no digest", used: []int{0, 1, 2}, digest: false, setup: func(t *testing.T) setup {
			u := newUpload(t, "item-1", []byte("small"), sharing.AsmuthBloom, 2, 3)
			return setup{3, serve(u, u, u)}
		}},
		{name: "a share of another upload under the same ID", used: []int{0, 2, 3}, digest: true, failed: map[int]string{1: "another upload"},
			stream: &getWant{used: []int{0, 2}, digest: true, failed: map[int]string{1: "another upload", 3: "not needed"}}, setup: func(t *testing.T) setup {
				a := newUpload(t, "item-1", data, sharing.Dispersal, 2, 4)
				b := newUpload(t, "item-1", []byte("a second upload under the same name"), sharing.Dispersal, 2, 4)
				return setup{4, serve(a, b, a, a)}
			}},
		{name: "a re-hashed paper share spoils the first recovery", used: []int{1, 2}, digest: true, failed: map[int]string{0: "left out"}, setup: func(t *testing.T) setup {
			u := newUpload(t, "item-1", data, sharing.Paper, 2, 3)
			u.tamper(t, 0)
			return setup{3, serve(u, u, u)}
		}},
		{name: "a re-hashed dispersal share fails its Merkle proof", used: []int{0, 1}, digest: true, failed: map[int]string{2: "rejected"},
			// Streaming never reads share 2 past its header.
			stream: &getWant{used: []int{0, 1}, digest: true, failed: map[int]string{2: "not needed"}}, setup: func(t *testing.T) setup {
				u := newUpload(t, "item-1", data, sharing.Dispersal, 2, 3)
				u.tamper(t, 2)
				return setup{3, serve(u, u, u)}
			}},
		{name: "two re-hashed paper shares: every set fails", err: []error{ErrRecover},
			msg:    []string{"groups [0 1 2]", "groups [0 1]", "groups [1 2]", "groups [0 2]"},
			stream: &getWant{err: []error{ErrRecover}, msg: []string{"groups [0 1]", "groups [1 2]", "groups [0 2]"}}, setup: func(t *testing.T) setup {
				u := newUpload(t, "item-1", data, sharing.Paper, 2, 3)
				u.tamper(t, 0)
				u.tamper(t, 1)
				return setup{3, serve(u, u, u)}
			}},
		{name: "no group has the item", err: []error{ErrTooFewGroups}, msg: []string{"no group returned a share"}, setup: func(t *testing.T) setup {
			return setup{3, serve(nil, nil, nil)}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.setup(t)
			c := (&dataFake{groups: s.groups, share: func(id string, i int) *ShareDownload {
				if id != "item-1" {
					return nil
				}
				return s.share(i)
			}}).client(t)
			want := getWant{tc.used, tc.err, tc.digest, tc.failed, tc.msg}
			got, rep, err := c.GetData(context.Background(), "item-1", "")
			want.check(t, data, got, rep, err)
			// GetDataTo into a file, which it can rewind after a failed
			// attempt, comes to the same result by the same attempts.
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			f, ferr := os.Create(filepath.Join(t.TempDir(), "out"))
			if ferr != nil {
				t.Fatal(ferr)
			}
			defer f.Close()
			rep, err = c.GetDataTo(context.Background(), f, "item-1", "")
			got, _ = os.ReadFile(f.Name())
			if tc.stream != nil {
				want = *tc.stream
			}
			want.check(t, data, got, rep, err)
			emptyDir(t, tmp)
		})
	}
}

// getWant is what a case of TestGetDataTrustsOnlyRecords expects; see
// its table.
type getWant struct {
	used   []int
	err    []error
	digest bool
	failed map[int]string
	msg    []string
}

// check checks a recovery of data (or of "small") against w.
func (w getWant) check(t *testing.T, data, got []byte, rep GetReport, err error) {
	t.Helper()
	if w.used == nil {
		if err == nil {
			t.Fatalf("recovered %q from groups %v", got, rep.Used)
		}
		for _, want := range w.err {
			if !errors.Is(err, want) {
				t.Errorf("error does not match %v: %v", want, err)
			}
		}
		for _, m := range w.msg {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("error lacks %q: %v", m, err)
			}
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) && !bytes.Equal(got, []byte("small")) {
		t.Fatalf("recovered %q", got)
	}
	if !slices.Equal(rep.Used, w.used) || rep.DigestChecked != w.digest || rep.Item.Threshold != 2 || rep.Length != int64(len(got)) {
		t.Fatalf("report: used %v (want %v), digest checked %v (want %v), length %d, item %+v", rep.Used, w.used, rep.DigestChecked, w.digest, rep.Length, rep.Item)
	}
	for g, m := range w.failed {
		if !strings.Contains(rep.Failed[g], m) {
			t.Errorf("group %d: reason %q lacks %q", g, rep.Failed[g], m)
		}
	}
}

// TestGetDataToRewind: into a writer it cannot rewind, GetDataTo tries
// another set of shares only if the failed attempt wrote nothing; into a
// file it cuts a failed attempt's output off and tries the next.
func TestGetDataToRewind(t *testing.T) {
	tests := []struct {
		name   string
		scheme sharing.Scheme
		size   int
		// used: the groups recovered from, nil for ErrOutputWritten.
		used []int
	}{
		// The first attempt's only segment fails its AES-GCM tag before
		// anything is written: the next set is tried.
		{"dispersal", sharing.Dispersal, 1000, []int{1, 2}},
		// So does a paper share's one chunk, found out of range.
		{"paper, one segment", sharing.Paper, 1000, []int{1, 2}},
		// Paper mode writes a segment (64 KiB) before the next one, in
		// which the re-hashed share is caught.
		{"paper, two segments", sharing.Paper, 100 << 10, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := bytes.Repeat([]byte("0123456789abcdef"), tc.size/16)
			u := newUpload(t, "item-1", data, tc.scheme, 2, 3)
			u.tamper(t, 0)
			c := (&dataFake{groups: 3, share: func(_ string, i int) *ShareDownload { return u.download(t, i) }}).client(t)
			var out bytes.Buffer
			rep, err := c.GetDataTo(context.Background(), &out, "item-1", "")
			if tc.used == nil {
				var re *RecoverError
				if !errors.Is(err, ErrOutputWritten) || !errors.Is(err, ErrRecover) || !errors.As(err, &re) || len(re.Attempts) != 1 {
					t.Fatalf("want one attempt failing with ErrOutputWritten, got %v", err)
				}
				return
			}
			if err != nil || !bytes.Equal(out.Bytes(), data) || !slices.Equal(rep.Used, tc.used) {
				t.Fatalf("recovered %q from groups %v (want %v): %v", out.Bytes(), rep.Used, tc.used, err)
			}
		})
	}
	t.Run("paper, two segments, into a file", func(t *testing.T) {
		data := bytes.Repeat([]byte("0123456789abcdef"), 100<<10/16)
		u := newUpload(t, "item-1", data, sharing.Paper, 2, 3)
		u.tamper(t, 0)
		c := (&dataFake{groups: 3, share: func(_ string, i int) *ShareDownload { return u.download(t, i) }}).client(t)
		f, err := os.Create(filepath.Join(t.TempDir(), "out"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		// What the file held before stays.
		f.WriteString("kept")
		rep, err := c.GetDataTo(context.Background(), f, "item-1", "")
		if err != nil || !slices.Equal(rep.Used, []int{1, 2}) || len(rep.Failed) != 1 {
			t.Fatalf("recovered from groups %v: %v", rep.Used, err)
		}
		if got, _ := os.ReadFile(f.Name()); !bytes.Equal(got, append([]byte("kept"), data...)) {
			t.Fatalf("the file holds %d bytes, want %d", len(got), 4+len(data))
		}
	})
}

// TestFetchSharesOneUpload: FetchShares returns the shares of one upload
// only, and names the groups holding another.
func TestFetchSharesOneUpload(t *testing.T) {
	a := newUpload(t, "item-1", []byte("the first upload"), sharing.Dispersal, 2, 4)
	b := newUpload(t, "item-1", []byte("a second upload under the same name"), sharing.Dispersal, 2, 4)
	ups := []*dataUpload{a, b, a, b}
	c := (&dataFake{groups: 4, share: func(_ string, i int) *ShareDownload { return ups[i].download(t, i) }}).client(t)
	shares, rep, err := c.FetchShares(context.Background(), "item-1", "", 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(shares) != 2 || !slices.Equal(rep.Used, []int{0, 2}) || !strings.Contains(rep.Failed[1], "another upload") || !strings.Contains(rep.Failed[3], "another upload") {
		t.Fatalf("%d shares, report %+v", len(shares), rep)
	}
	if got, _, err := sharing.Recover(shares); err != nil || !bytes.Equal(got, a.data) {
		t.Fatalf("the shares returned do not recover the first upload: %v", err)
	}
}

// TestGetSharePaged: a share of more segments than the node serves in a
// page is fetched page by page, each page verified against the head
// served with it, however far the heads advance; a page that does not
// carry on from the last segment checked with the same upload's records
// is refused with ErrVerify.
func TestGetSharePaged(t *testing.T) {
	data := bytes.Repeat([]byte("paged "), 2*shard.MaxSegmentBytes/6+1000)
	u := newUpload(t, "paged-1", data, sharing.Dispersal, 1, 2)
	if len(u.recs[0]) != 3 {
		t.Fatalf("the share has %d segments, want 3", len(u.recs[0]))
	}
	other := newUpload(t, "paged-1", bytes.Repeat([]byte("other "), len(data)/6), sharing.Dispersal, 1, 2)
	another := newUpload(t, "paged-2", data, sharing.Dispersal, 1, 2)
	// logOf is grownLog of share 0 of up, made once.
	var (
		mu   sync.Mutex
		logs = map[string]ShareDownload{}
	)
	logOf := func(up *dataUpload, after int) ShareDownload {
		mu.Lock()
		defer mu.Unlock()
		key := fmt.Sprintf("%p/%d", up, after)
		if dl, ok := logs[key]; ok {
			return dl
		}
		var txs []chain.Tx
		for _, r := range up.recs[0] {
			txs = append(txs, shardTx(0, r))
		}
		logs[key] = grownLog(t, 0, txs, after)
		return logs[key]
	}
	// serve answers a page of one segment, as a node with that page size
	// would, from a log grown by one transaction per page served before:
	// every page comes with a newer head. swap, if set, replaces the page
	// from 1 by that download's segments from..to-1.
	type swap struct {
		dl       func() ShareDownload
		from, to int
	}
	serve := func(sw *swap, froms *[]int) func(string, int, int, int) *ShareDownload {
		return func(_ string, _ int, from, limit int) *ShareDownload {
			*froms = append(*froms, from)
			dl := logOf(u, len(*froms)-1)
			dl.Segments = pageOf(dl.Segments, from, min(limit, 1))
			if sw != nil && from == 1 {
				src := sw.dl()
				dl.Segments, dl.Head = src.Segments[sw.from:sw.to], src.Head
			}
			return &dl
		}
	}
	tests := []struct {
		name string
		swap *swap
		// ok: the share verifies.
		ok bool
		// msg: words the error must hold.
		msg string
	}{
		{name: "heads advance between pages", ok: true},
		{name: "a page of another upload under the same ID", msg: "another upload", swap: &swap{func() ShareDownload { return logOf(other, 0) }, 1, 2}},
		{name: "a page of another item", msg: "of paged-2", swap: &swap{func() ShareDownload { return logOf(another, 0) }, 1, 2}},
		{name: "a page skips a segment", msg: "segment 1 is recorded as segment 2", swap: &swap{func() ShareDownload { return logOf(u, 0) }, 2, 3}},
		{name: "a page repeats a segment", msg: "segment 1 is recorded as segment 0", swap: &swap{func() ShareDownload { return logOf(u, 0) }, 0, 1}},
		{name: "a page without segments", msg: "no segments served from segment 1", swap: &swap{func() ShareDownload { return logOf(u, 0) }, 1, 1}},
		{name: "a page's proofs for another page's head", msg: "proof is for log size", swap: &swap{func() ShareDownload {
			dl := logOf(u, 0)
			dl.Head = logOf(u, 7).Head
			return dl
		}, 1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var froms []int
			c := (&dataFake{groups: 2, page: serve(tc.swap, &froms)}).client(t)
			sh, item, err := c.GetShare(context.Background(), u.id, 0, "", "")
			getFroms := froms
			froms = nil
			dir := t.TempDir()
			v, serr := c.spoolShare(context.Background(), u.id, 0, "", "", dir)
			if !tc.ok {
				for _, err := range []error{err, serr} {
					if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), tc.msg) {
						t.Fatalf("want ErrVerify saying %q, got %v", tc.msg, err)
					}
				}
				emptyDir(t, dir)
				return
			}
			if err != nil || serr != nil {
				t.Fatalf("get: %v; streaming: %v", err, serr)
			}
			for _, fs := range [][]int{getFroms, froms} {
				if !slices.Equal(fs, []int{0, 1, 2}) {
					t.Fatalf("pages asked from %v, want [0 1 2]", fs)
				}
			}
			want := u.shares[0]
			enc, _ := want.MarshalBinary()
			if sh.Hash != want.Hash || item.Segments != 3 || v.item.ShareHash != item.ShareHash || v.item.Segments != 3 {
				t.Fatalf("share %x, item %+v; streaming item %+v", sh.Hash, item, v.item)
			}
			if b, err := os.ReadFile(v.file); err != nil || !bytes.Equal(b, enc) {
				t.Fatalf("spooled share differs from the share (%v)", err)
			}
		})
	}
}
