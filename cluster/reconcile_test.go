package cluster

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// The reconciler's decide step as table tests: plain observations in,
// health and planned changes out; no raft, no gossip, no clock.

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

var testRules = reconcileRules{
	TargetVoters:      3,
	StabilizationTime: 2 * time.Second,
	DeadServerGrace:   5 * time.Second,
	MaxTrailingLogs:   10,
}

// gm is a gossip member of group 0 at address id+":1".
func gm(id, state string, role Role, since time.Time) member {
	return member{meta: nodeMeta{ID: id, Group: 0, Role: role, Addr: id + ":1"}, state: state, since: since}
}

func voter(id string) configServer    { return configServer{ID: id, Addr: id + ":1", Voter: true} }
func nonvoter(id string) configServer { return configServer{ID: id, Addr: id + ":1"} }

// obs is an observation by leader "L" at t0, term 7, last index 100, in
// which every server and member listed answers healthily unless down
// says otherwise.
func obs(servers []configServer, view map[string]member, down ...string) observation {
	o := observation{Self: "L", Now: t0, Term: 7, LastIndex: 100, Servers: servers, View: view, Answers: map[string]Health{}, Rules: testRules}
	for id := range view {
		o.Answers[id] = Health{ID: id, Term: 7, LastIndex: 100}
	}
	for _, id := range down {
		delete(o.Answers, id)
	}
	return o
}

// damagedObs is o with each of ids answering its probe with a chain
// alarm at height 12.
func damagedObs(o observation, ids ...string) observation {
	for _, id := range ids {
		h := o.Answers[id]
		h.ChainAlarm = "height 12: bad root"
		o.Answers[id] = h
	}
	return o
}

// view builds a gossip view; every member is alive since long ago unless
// given explicitly.
func view(ms ...member) map[string]member {
	v := map[string]member{}
	for _, m := range ms {
		v[m.meta.ID] = m
	}
	return v
}

func alive(id string) member    { return gm(id, stateAlive, RoleVoter, t0.Add(-time.Hour)) }
func executor(id string) member { return gm(id, stateAlive, RoleExecutor, t0.Add(-time.Hour)) }

// stableSince is a previous judgement of a server healthy since long ago.
func stableSince(ids ...string) map[string]serverHealth {
	prev := map[string]serverHealth{}
	for _, id := range ids {
		prev[id] = serverHealth{Healthy: true, HealthySince: t0.Add(-time.Hour)}
	}
	return prev
}

func failedFor(prev map[string]serverHealth, d time.Duration, ids ...string) map[string]serverHealth {
	for _, id := range ids {
		prev[id] = serverHealth{FailedSince: t0.Add(-d)}
	}
	return prev
}

func TestJudgeReasons(t *testing.T) {
	servers := []configServer{voter("L"), voter("a")}
	cases := []struct {
		name   string
		member *member // a's gossip entry; nil: unknown to gossip
		answer *Health // a's probe answer; nil: no answer
		want   string  // "" for healthy
	}{
		{"healthy", &member{meta: nodeMeta{ID: "a"}, state: stateAlive}, &Health{ID: "a", Term: 7, LastIndex: 95}, ""},
		{"suspect still counts", &member{meta: nodeMeta{ID: "a"}, state: stateSuspect}, &Health{ID: "a", Term: 7, LastIndex: 100}, ""},
		{"at the trailing limit", &member{meta: nodeMeta{ID: "a"}, state: stateAlive}, &Health{ID: "a", Term: 7, LastIndex: 90}, ""},
		{"unknown to gossip", nil, &Health{ID: "a", Term: 7, LastIndex: 100}, "not alive in gossip"},
		{"failed in gossip", &member{meta: nodeMeta{ID: "a"}, state: stateFailed}, &Health{ID: "a", Term: 7, LastIndex: 100}, "not alive in gossip"},
		{"left", &member{meta: nodeMeta{ID: "a"}, state: stateLeft}, nil, "not alive in gossip"},
		{"silent", &member{meta: nodeMeta{ID: "a"}, state: stateAlive}, nil, "does not answer (no answer since this leader's term began)"},
		{"another term", &member{meta: nodeMeta{ID: "a"}, state: stateAlive}, &Health{ID: "a", Term: 6, LastIndex: 100}, "on another term (6, the leader's is 7)"},
		{"trails", &member{meta: nodeMeta{ID: "a"}, state: stateAlive}, &Health{ID: "a", Term: 7, LastIndex: 89}, "trails the leader (by 11 log entries, more than 10)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := observation{Self: "L", Now: t0, Term: 7, LastIndex: 100, Servers: servers, View: map[string]member{}, Answers: map[string]Health{}, Rules: testRules}
			if c.member != nil {
				o.View["a"] = *c.member
			}
			if c.answer != nil {
				o.Answers["a"] = *c.answer
			}
			h := judge(nil, o)
			if got := h["a"]; got.Healthy != (c.want == "") || !strings.HasPrefix(got.Reason, c.want) || (c.want == "") != (got.Reason == "") {
				t.Fatalf("a judged healthy=%v reason=%q, want reason %q", got.Healthy, got.Reason, c.want)
			}
			if self := h["L"]; !self.Healthy || self.LastIndex != 100 {
				t.Fatalf("the leader judged %+v, want healthy at its own last index", self)
			}
		})
	}
	// A server that answered before says since when it has not.
	o := observation{Self: "L", Now: t0, Term: 7, LastIndex: 100, Servers: servers, View: map[string]member{"a": {meta: nodeMeta{ID: "a"}, state: stateAlive}}, Answers: map[string]Health{}, Rules: testRules}
	h := judge(map[string]serverHealth{"a": {Healthy: true, LastAnswer: t0.Add(-1500 * time.Millisecond)}}, o)
	if want := "does not answer (no answer since " + stamp(t0.Add(-1500*time.Millisecond)) + ")"; h["a"].Reason != want || h["a"].LastAnswer != t0.Add(-1500*time.Millisecond) {
		t.Fatalf("a silent since its last answer: reason %q, last answer %v; want %q", h["a"].Reason, h["a"].LastAnswer, want)
	}
}

// A server reporting a chain alarm is unhealthy, with the alarm as the
// reason.
func TestJudgeDamaged(t *testing.T) {
	o := damagedObs(obs([]configServer{voter("L"), voter("a")}, view(alive("L"), alive("a"))), "a")
	h := judge(nil, o)["a"]
	if h.Healthy || !h.Damaged || h.Reason != "chain store damaged (height 12: bad root)" {
		t.Fatalf("judged %+v", h)
	}
}

func TestJudgeRemembersAcrossPasses(t *testing.T) {
	servers := []configServer{voter("L"), nonvoter("a"), nonvoter("b"), voter("c"), voter("d")}
	v := view(alive("L"), alive("a"), alive("b"), gm("c", stateFailed, RoleVoter, t0.Add(-3*time.Second)))
	o := obs(servers, v, "c", "d")
	prev := map[string]serverHealth{
		"a":    {Healthy: true, HealthySince: t0.Add(-time.Hour)},
		"d":    {FailedSince: t0.Add(-time.Minute)},
		"gone": {Healthy: true}, // no longer configured
	}
	h := judge(prev, o)
	if _, ok := h["gone"]; ok {
		t.Fatal("a server no longer configured is still judged")
	}
	if a := h["a"]; !a.Stable || !a.HealthySince.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("a, healthy for an hour: %+v", a)
	}
	if b := h["b"]; b.Stable || !b.HealthySince.Equal(t0) {
		t.Fatalf("b, healthy from now: %+v", b)
	}
	if c := h["c"]; !c.FailedSince.Equal(t0.Add(-3 * time.Second)) {
		t.Fatalf("c failed in gossip 3s ago: FailedSince %v", c.FailedSince)
	}
	if d := h["d"]; !d.FailedSince.Equal(t0.Add(-time.Minute)) || d.GossipState != "unknown" {
		t.Fatalf("d keeps the failure time it had: %+v", d)
	}
	// b stays healthy: stable once StabilizationTime has passed.
	o.Now = t0.Add(testRules.StabilizationTime)
	if b := judge(h, o)["b"]; !b.Stable || !b.HealthySince.Equal(t0) {
		t.Fatalf("b after the stabilization time: %+v", b)
	}
	// A silent but alive server is unhealthy, not failed.
	delete(o.Answers, "a")
	if a := judge(h, o)["a"]; a.Healthy || !a.FailedSince.IsZero() {
		t.Fatalf("a silent but alive: %+v", a)
	}
}

func TestDecide(t *testing.T) {
	three := []configServer{voter("L"), voter("a"), voter("b")}
	cases := []struct {
		name    string
		prev    map[string]serverHealth
		o       observation
		want    []action
		holdsOf []string // voters held for quorum
	}{
		{
			name: "steady group: nothing to do",
			prev: stableSince("a", "b"),
			o:    obs(three, view(alive("L"), alive("a"), alive("b"))),
		},
		{
			name: "newcomers that answer are added as non-voters, in ID order",
			o:    obs(three, view(alive("L"), alive("a"), alive("b"), executor("x"), alive("n"), alive("silent")), "silent"),
			prev: stableSince("a", "b"),
			want: []action{
				{Kind: actAddNonvoter, ID: "n", Addr: "n:1", Role: RoleVoter},
				{Kind: actAddNonvoter, ID: "x", Addr: "x:1", Role: RoleExecutor},
			},
		},
		{
			name: "members of other groups, failed or suspect ones are not added",
			prev: stableSince("a", "b"),
			o: obs(three, view(alive("L"), alive("a"), alive("b"),
				member{meta: nodeMeta{ID: "g1", Group: 1, Addr: "g1:1"}, state: stateAlive},
				gm("f", stateFailed, RoleVoter, t0), gm("s", stateSuspect, RoleVoter, t0))),
		},
		{
			name: "a stable voter-role non-voter is promoted up to the target",
			prev: stableSince("a", "s"),
			o:    obs([]configServer{voter("L"), voter("a"), nonvoter("s")}, view(alive("L"), alive("a"), alive("s"))),
			want: []action{{Kind: actPromote, ID: "s", Addr: "s:1"}},
		},
		{
			name: "not yet stable: no promotion",
			prev: stableSince("a"),
			o:    obs([]configServer{voter("L"), voter("a"), nonvoter("s")}, view(alive("L"), alive("a"), alive("s"))),
		},
		{
			name: "an executor is never promoted",
			prev: stableSince("a", "x"),
			o:    obs([]configServer{voter("L"), voter("a"), nonvoter("x")}, view(alive("L"), alive("a"), executor("x"))),
		},
		{
			name: "at the target a standby waits",
			prev: stableSince("a", "b", "s"),
			o:    obs(append(three, nonvoter("s")), view(alive("L"), alive("a"), alive("b"), alive("s"))),
		},
		{
			name: "the longest-stable standby is promoted first",
			prev: map[string]serverHealth{
				"s1": {Healthy: true, HealthySince: t0.Add(-time.Minute)},
				"s2": {Healthy: true, HealthySince: t0.Add(-time.Hour)},
			},
			o:    obs([]configServer{voter("L"), nonvoter("s1"), nonvoter("s2")}, view(alive("L"), alive("s1"), alive("s2"))),
			want: []action{{Kind: actPromote, ID: "s2", Addr: "s2:1"}},
		},
		{
			name: "a failed voter within the grace period stays",
			prev: failedFor(stableSince("b"), time.Second, "a"),
			o:    obs(three, view(alive("L"), gm("a", stateFailed, RoleVoter, t0.Add(-time.Second)), alive("b")), "a"),
		},
		{
			name: "standby first: a failed voter is replaced before it is removed",
			prev: failedFor(stableSince("b", "s"), time.Minute, "a"),
			o:    obs(append(three, nonvoter("s")), view(alive("L"), gm("a", stateFailed, RoleVoter, t0.Add(-time.Minute)), alive("b"), alive("s")), "a"),
			want: []action{{Kind: actPromote, ID: "s", Addr: "s:1"}},
		},
		{
			name: "once the standby votes, the failed voter goes",
			prev: failedFor(stableSince("b", "s"), time.Minute, "a"),
			o:    obs(append(three, voter("s")), view(alive("L"), gm("a", stateFailed, RoleVoter, t0.Add(-time.Minute)), alive("b"), alive("s")), "a"),
			want: []action{{Kind: actRemove, ID: "a", Voter: true, Reason: stateFailed}},
		},
		{
			name: "without a standby a failed voter goes after the grace period",
			prev: failedFor(stableSince("b"), time.Minute, "a"),
			o:    obs(three, view(alive("L"), gm("a", stateFailed, RoleVoter, t0.Add(-time.Minute)), alive("b")), "a"),
			want: []action{{Kind: actRemove, ID: "a", Voter: true, Reason: stateFailed}},
		},
		{
			name:    "quorum: two failed voters of three are kept",
			prev:    failedFor(map[string]serverHealth{}, time.Minute, "a", "b"),
			o:       obs(three, view(alive("L"), gm("a", stateFailed, RoleVoter, t0.Add(-time.Minute)), gm("b", stateFailed, RoleVoter, t0.Add(-time.Minute))), "a", "b"),
			holdsOf: []string{"a", "b"},
		},
		{
			name: "a node that left goes at once, a voter even with a standby",
			prev: stableSince("b", "s"),
			o:    obs(append(three, nonvoter("s")), view(alive("L"), gm("a", stateLeft, RoleVoter, t0), alive("b"), alive("s")), "a"),
			want: []action{{Kind: actRemove, ID: "a", Voter: true, Reason: stateLeft}},
		},
		{
			name: "non-voters go freely; one voter change per pass",
			prev: stableSince("c", "d"),
			o: obs([]configServer{voter("L"), voter("a"), voter("b"), voter("c"), voter("d"), nonvoter("x")},
				view(alive("L"), gm("a", stateLeft, RoleVoter, t0), gm("b", stateLeft, RoleVoter, t0), alive("c"), alive("d"), gm("x", stateLeft, RoleExecutor, t0)), "a", "b", "x"),
			want: []action{
				{Kind: actRemove, ID: "a", Voter: true, Reason: stateLeft},
				{Kind: actRemove, ID: "x", Reason: stateLeft},
			},
		},
		{
			name: "an entry whose ID is alive at another address is replaced",
			prev: stableSince("a", "b", "x"),
			o: obs(append(three, nonvoter("x")), view(alive("L"), alive("a"), alive("b"),
				member{meta: nodeMeta{ID: "x", Role: RoleExecutor, Addr: "x:2"}, state: stateAlive})),
			want: []action{{Kind: actRemove, ID: "x", Reason: "address changed to x:2"}},
		},
		{
			name: "a wiped voter's entry goes when quorum holds; the newcomer waits a pass",
			prev: stableSince("b"),
			o: obs(three, view(alive("L"), alive("b"),
				member{meta: nodeMeta{ID: "fresh", Role: RoleVoter, Addr: "a:1"}, state: stateAlive}), "a"),
			want: []action{{Kind: actRemove, ID: "a", Voter: true, Reason: "address now belongs to fresh"}},
		},
		{
			name: "a wiped voter's entry is kept without a healthy quorum",
			prev: failedFor(map[string]serverHealth{}, time.Second, "b"),
			o: obs(three, view(alive("L"), gm("b", stateFailed, RoleVoter, t0.Add(-time.Second)),
				member{meta: nodeMeta{ID: "fresh", Role: RoleVoter, Addr: "a:1"}, state: stateAlive}), "a", "b"),
			holdsOf: []string{"a"},
		},
		{
			name: "a voter reporting a chain alarm keeps its vote (it cannot stand for leader)",
			prev: stableSince("a", "b"),
			o:    damagedObs(obs(three, view(alive("L"), alive("a"), alive("b"))), "a"),
		},
		{
			name: "a damaged non-voter is not promoted; a healthy standby is",
			prev: stableSince("a", "d", "s"),
			o:    damagedObs(obs([]configServer{voter("L"), voter("a"), nonvoter("d"), nonvoter("s")}, view(alive("L"), alive("a"), alive("d"), alive("s"))), "d"),
			want: []action{{Kind: actPromote, ID: "s", Addr: "s:1"}},
		},
		{
			name: "an alarm seen only in gossip counts too",
			prev: stableSince("a", "d"),
			o: obs([]configServer{voter("L"), voter("a"), nonvoter("d")}, view(alive("L"), alive("a"),
				member{meta: nodeMeta{ID: "d", Role: RoleVoter, Addr: "d:1", Corrupt: "bad root", CorruptAt: 12}, state: stateAlive, since: t0.Add(-time.Hour)})),
		},
		{
			name: "once its alarm cleared, a non-voter is promoted after StabilizationTime",
			prev: map[string]serverHealth{"a": {Healthy: true, HealthySince: t0.Add(-time.Hour)}, "d": {Healthy: true, HealthySince: t0.Add(-testRules.StabilizationTime)}},
			o:    obs([]configServer{voter("L"), voter("a"), nonvoter("d")}, view(alive("L"), alive("a"), alive("d"))),
			want: []action{{Kind: actPromote, ID: "d", Addr: "d:1"}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := decide(c.prev, c.o)
			if !reflect.DeepEqual(p.Actions, c.want) {
				t.Fatalf("actions\n got %+v\nwant %+v", p.Actions, c.want)
			}
			var held []string
			for _, h := range p.Held {
				held = append(held, h.ID)
			}
			if !reflect.DeepEqual(held, c.holdsOf) {
				t.Fatalf("held %v, want %v", held, c.holdsOf)
			}
			voterChanges := 0
			for _, a := range p.Actions {
				if a.Kind == actPromote || a.Kind == actRemove && a.Voter {
					voterChanges++
				}
			}
			if voterChanges > 1 {
				t.Fatalf("%d voter changes planned in one pass", voterChanges)
			}
		})
	}
}

func TestProbeTargets(t *testing.T) {
	o := obs([]configServer{voter("L"), voter("a"), nonvoter("b")}, view(
		alive("L"), alive("a"), alive("n"), executor("x"),
		gm("f", stateFailed, RoleVoter, t0),
		member{meta: nodeMeta{ID: "other", Group: 1, Addr: "other:1"}, state: stateAlive},
		member{meta: nodeMeta{ID: "fresh", Addr: "b:1"}, state: stateAlive},
	))
	want := map[string]string{"a": "a:1", "b": "b:1", "n": "n:1", "x": "x:1"}
	if got := probeTargets(o); !reflect.DeepEqual(got, want) {
		t.Fatalf("probe targets %v, want %v", got, want)
	}
}

// TestCollectReadsRaftAndProbes: collect reports the leader's raft term
// and last index and the configuration, and every follower answers its
// probe on that term.
func TestCollectReadsRaftAndProbes(t *testing.T) {
	l := startLocal(t, 1, 3)
	ld, ok := l.Leader(0)
	if !ok {
		t.Fatal("no leader")
	}
	r := submit(t, ld, 0, "", "collect")
	for _, n := range l.Nodes {
		waitUntil(t, "replication to "+n.ID().Short(), 10*time.Second, func() bool {
			h, _, _ := n.Store().Head()
			return h.LogSize > r.Index
		})
	}
	var o observation
	waitUntil(t, "every follower to answer its probe", 10*time.Second, func() bool {
		var ok bool
		o, ok = ld.rec.collect()
		return ok && len(o.Answers) == 2
	})
	if o.Self != ld.info.ID || o.Term == 0 || o.Term != ld.raft.CurrentTerm() || o.LastIndex < ld.raft.AppliedIndex() {
		t.Fatalf("observation: self %s term %d last %d; raft term %d applied %d", shortID(o.Self), o.Term, o.LastIndex, ld.raft.CurrentTerm(), ld.raft.AppliedIndex())
	}
	if len(o.Servers) != 3 {
		t.Fatalf("configuration of %d servers, want 3", len(o.Servers))
	}
	for id, h := range o.Answers {
		if h.ID != id || h.Term != o.Term || h.LastIndex == 0 {
			t.Fatalf("answer of %s: %+v (leader term %d)", shortID(id), h, o.Term)
		}
	}
	if p := decide(ld.rec.snapshot(), o); len(p.Actions) != 0 {
		t.Fatalf("a steady group plans %+v", p.Actions)
	}
}

// TestActOnlyOnThePlannedConfiguration: act drops a plan made on a
// configuration that has changed since, and chains the changes of a plan
// made on the current one.
func TestActOnlyOnThePlannedConfiguration(t *testing.T) {
	l := startLocal(t, 1, 3)
	ld, ok := l.Leader(0)
	if !ok {
		t.Fatal("no leader")
	}
	var f *Node
	for _, n := range l.Nodes {
		if n != ld {
			f = n
			break
		}
	}
	id := f.info.ID
	// Keep the leader's own passes out of the way.
	ld.rec.passMu.Lock()
	defer ld.rec.passMu.Unlock()
	current, ok := ld.rec.configuration()
	if !ok || len(current) != 3 {
		t.Fatalf("configuration %v", current)
	}
	// Planned before a third server joined: dropped.
	stale := slices.DeleteFunc(slices.Clone(current), func(s configServer) bool { return s.ID != ld.info.ID && s.ID != id })
	demote := plan{Actions: []action{
		{Kind: actRemove, ID: id, Voter: true, Reason: "test"},
		{Kind: actAddNonvoter, ID: id, Addr: f.info.Addr, Role: RoleVoter},
	}}
	ld.rec.act(demote, stale)
	if got, _ := ld.rec.configuration(); !slices.Equal(got, current) {
		t.Fatalf("a plan made on a stale configuration changed it: %v", got)
	}
	// Planned on the current configuration: both changes, the second on
	// the configuration the first produced.
	ld.rec.act(demote, current)
	got, _ := ld.rec.configuration()
	want := slices.DeleteFunc(slices.Clone(current), func(s configServer) bool { return s.ID == id })
	want = append(want, configServer{ID: id, Addr: f.info.Addr})
	if !slices.Equal(got, want) {
		t.Fatalf("configuration after the plan %v, want %v", got, want)
	}
}
