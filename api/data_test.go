package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"qledger/api/client"
	"qledger/chain"
	"qledger/cluster"
	"qledger/shard"
)

// getDownload GETs path from base and decodes a share download, or the
// error body into msg.
func getDownload(t *testing.T, base, path string) (status int, dl client.ShareDownload, msg string) {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e client.ErrorBody
		json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, dl, e.Error
	}
	if err := json.NewDecoder(resp.Body).Decode(&dl); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, dl, ""
}

// TestGetSharePages pages through a share of three segments, kept by the
// other group than the API node's: each page holds the segments asked
// for, cut at the share's end, with proofs for the head it comes with.
// Without from and limit the small share comes whole; bad pages are 400.
func TestGetSharePages(t *testing.T) {
	_, c, base := startAPI(t, 2, 1)
	ctx := context.Background()
	data := bytes.Repeat([]byte("paged share "), 2*shard.MaxSegmentBytes/12+100)
	res, err := c.PutData(ctx, data, client.PutOptions{Threshold: 1, Shares: 2, DataID: "paged-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Receipts[1]) != 3 {
		t.Fatalf("share 1 has %d segments, want 3", len(res.Receipts[1]))
	}
	tests := []struct {
		query string
		// segs: the segments the page holds.
		segs []int
	}{
		{"?from=0&limit=2", []int{0, 1}},
		{"?from=2&limit=2", []int{2}},
		{"?from=1&limit=1", []int{1}},
		{"?limit=1", []int{0}},
		{"?from=1", []int{1, 2}},
		{"?from=0&limit=" + strconv.Itoa(cluster.MaxItemPageSegments) + "&level=linearizable", []int{0, 1, 2}},
		{"", []int{0, 1, 2}},
	}
	for _, tc := range tests {
		status, dl, msg := getDownload(t, base, "/v1/data/paged-1/shares/1"+tc.query)
		if status != http.StatusOK {
			t.Fatalf("%q: %d %s", tc.query, status, msg)
		}
		if dl.Item.Segments != 3 || dl.Head.Group != 1 || len(dl.Segments) != len(tc.segs) {
			t.Fatalf("%q: item %+v, head of group %d, %d segments", tc.query, dl.Item, dl.Head.Group, len(dl.Segments))
		}
		for k, seg := range dl.Segments {
			if err := client.VerifyTxAgainstHead(seg, dl.Head); err != nil {
				t.Fatalf("%q: segment %d: %v", tc.query, tc.segs[k], err)
			}
			tx, err := chain.DecodeTx(seg.TxBytes)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := shard.Decode(tx.Payload)
			if err != nil || rec.DataID != "paged-1" || rec.Index != 1 || rec.Segment != tc.segs[k] {
				t.Fatalf("%q: segment %d holds %+v (%v)", tc.query, tc.segs[k], rec, err)
			}
		}
	}
	for _, q := range []string{"?from=3", "?from=3&limit=1", "?limit=0", "?limit=" + strconv.Itoa(cluster.MaxItemPageSegments+1), "?from=-1", "?from=x", "?from=99999999999"} {
		if status, _, msg := getDownload(t, base, "/v1/data/paged-1/shares/1"+q); status != http.StatusBadRequest || msg == "" {
			t.Errorf("%q: %d %q, want 400", q, status, msg)
		}
	}
	if status, _, msg := getDownload(t, base, "/v1/data/no-such-item/shares/1?from=0&limit=1"); status != http.StatusNotFound || !strings.Contains(msg, "no-such-item") {
		t.Errorf("unknown item: %d %q", status, msg)
	}
	// The client pages too.
	got, _, err := c.GetData(ctx, "paged-1", "")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get: %v", err)
	}
}
