package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"qledger/api/client"
	"qledger/cluster"
)

// readyFake answers Ready with a fixed verdict and status.
type readyFake struct {
	*fakeCluster
	ok bool
	st cluster.ClusterStatus
}

func (f *readyFake) Ready(ctx context.Context) (bool, cluster.ClusterStatus) { return f.ok, f.st }

func member(id, suffrage string, healthy bool, reason, gossip string) cluster.Member {
	return cluster.Member{NodeInfo: cluster.NodeInfo{ID: id}, Suffrage: suffrage, Healthy: healthy, Reason: reason, Gossip: gossip}
}

// TestReadyzSaysWhy: /readyz names each unhealthy configuration member
// with its reason, both when the node is ready (200, degraded) and when a
// group has no leader (503, in the message); healthy members and nodes
// outside the configuration are not listed.
func TestReadyzSaysWhy(t *testing.T) {
	st := cluster.ClusterStatus{Groups: []cluster.GroupStatus{
		{Group: 0, HasLeader: true, Members: []cluster.Member{
			member("aaaa", "voter", true, "", "alive"),
			member("bbbb", "voter", false, "does not answer (no answer since 12:00:01.250Z)", "alive"),
			member("cccc", "none", false, "", "alive"),
		}},
		{Group: 1, HasLeader: true, Members: []cluster.Member{
			member("dddd", "nonvoter", false, "", "failed"),
		}},
	}}
	get := func(ok bool) (int, []byte) {
		srv, err := New(DefaultConfig(), &readyFake{fakeCluster: newFakeCluster(t), ok: ok, st: st})
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
		return w.Code, w.Body.Bytes()
	}

	code, body := get(true)
	if code != http.StatusOK {
		t.Fatalf("ready: %d %s", code, body)
	}
	var rb readyBody
	if err := json.Unmarshal(body, &rb); err != nil {
		t.Fatal(err)
	}
	want := []degradedMember{
		{Group: 0, Node: "bbbb", Reason: "does not answer (no answer since 12:00:01.250Z)"},
		{Group: 1, Node: "dddd", Reason: "gossip: failed"},
	}
	if rb.Status != "ready" || len(rb.Degraded) != len(want) || rb.Degraded[0] != want[0] || rb.Degraded[1] != want[1] {
		t.Fatalf("ready body %s, want status ready and degraded %+v", body, want)
	}

	st.Groups[1].HasLeader = false
	code, body = get(false)
	var eb client.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatal(err)
	}
	if code != http.StatusServiceUnavailable || eb.Code != "no_leader" ||
		!strings.Contains(eb.Error, "groups without a leader: [1]") ||
		!strings.Contains(eb.Error, "group 0 node bbbb: does not answer") ||
		!strings.Contains(eb.Error, "group 1 node dddd: gossip: failed") {
		t.Fatalf("not ready: %d %s", code, body)
	}

	// All healthy: no degraded field at all.
	st.Groups = st.Groups[:1]
	st.Groups[0].Members = st.Groups[0].Members[:1]
	code, body = get(true)
	if code != http.StatusOK || strings.TrimSpace(string(body)) != `{"status":"ready"}` {
		t.Fatalf("healthy ready: %d %s", code, body)
	}
}
