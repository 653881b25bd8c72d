package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"qledger/chain"
	"qledger/fsm"
	"qledger/pki"
)

// versionedListener serves one mux speaking p (none: a listener from
// before versioning, which negotiates nothing) and records the peers it
// refused for their version.
type versionedListener struct {
	addr string

	mu      sync.Mutex
	refused []error
}

func listenVersioned(t *testing.T, creds *pki.Credentials, p *protocols) *versionedListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	v := &versionedListener{addr: ln.Addr().String()}
	m := newMux(ln, hclog.NewNullLogger(), connRPC)
	m.tls = creds.ServerConfig(true, nil)
	if p != nil {
		m.tls = versionedServer(m.tls, *p, func(_ net.Addr, err error) {
			v.mu.Lock()
			v.refused = append(v.refused, err)
			v.mu.Unlock()
		})
	}
	go m.serve()
	go func() {
		for {
			c, err := m.subs[connRPC].Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { m.close() })
	return v
}

func (v *versionedListener) refusals() []error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]error(nil), v.refused...)
}

// TestProtocolNegotiation: nodes one version apart connect in both
// directions, with each other and with builds from before versioning
// (which speak 1); nodes further apart are refused with
// ErrProtocolVersion on the dialing side and reported on the listening
// side.
func TestProtocolNegotiation(t *testing.T) {
	ca, err := pki.NewCA("protocol test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	creds := nodeCreds(t, ca, strings.Repeat("ab", 32))
	v := func(lo, hi int) *protocols { return &protocols{min: lo, max: hi} }
	cases := []struct {
		name     string
		listener *protocols // nil: predates versioning
		dialer   *protocols // nil: predates versioning (offers nothing)
		ok       bool
	}{
		{"same version", v(1, 2), v(1, 2), true},
		{"new dials old", v(1, 1), v(1, 2), true},
		{"old dials new", v(1, 2), v(1, 1), true},
		{"new dials unversioned", nil, v(1, 2), true},
		{"unversioned dials new", v(1, 2), nil, true},
		{"two apart, old dials", v(2, 3), v(1, 1), false},
		{"two apart, new dials", v(1, 1), v(2, 3), false},
		{"unversioned dials too new", v(2, 3), nil, false},
		{"too new dials unversioned", nil, v(2, 3), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := listenVersioned(t, creds, tc.listener)
			d := dialer{creds: creds}
			if tc.dialer != nil {
				d.proto = *tc.dialer
			}
			var err error
			if tc.dialer == nil {
				err = dialUnversioned(l.addr, creds)
			} else {
				var c net.Conn
				if c, err = d.dial(context.Background(), l.addr, connRPC, 5*time.Second, ""); err == nil {
					c.Close()
				}
			}
			switch {
			case tc.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !tc.ok && err == nil:
				t.Fatal("connected, want refused")
			case !tc.ok && tc.dialer != nil && !errors.Is(err, ErrProtocolVersion):
				t.Fatalf("dial error %v, want ErrProtocolVersion", err)
			}
			if r := l.refusals(); !tc.ok && tc.listener != nil && (len(r) != 1 || !errors.Is(r[0], ErrProtocolVersion)) {
				t.Fatalf("listener reported %v, want one ErrProtocolVersion", r)
			} else if tc.ok && len(r) != 0 {
				t.Fatalf("listener refused %v", r)
			}
		})
	}
}

// dialUnversioned dials as a build from before versioning did: TLS with
// no ALPN offer, then the type byte.
func dialUnversioned(addr string, creds *pki.Credentials) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	tc := tls.Client(c, creds.ClientConfig(nil))
	if err := tc.Handshake(); err != nil {
		return err
	}
	_, err = tc.Write([]byte{connRPC})
	return err
}

// TestNewerEntryStopsEveryReplica: an entry of a command version this
// build does not read, committed in a group, stops the state machine of
// every replica at the same index, says so in each one's status, and
// leaves their chains equal; nothing after it is applied.
func TestNewerEntryStopsEveryReplica(t *testing.T) {
	l := startLocal(t, 1, 3)
	submit(t, l.Nodes[0], 0, "before", "before the newer entry")
	ld, ok := l.Leader(0)
	if !ok {
		t.Fatal("no leader")
	}
	tx := chain.Tx{Kind: chain.TxData, Group: 0, Payload: []byte("from the future")}
	newer := fsm.EncodeAppendBlock(time.Now().UnixNano(), [][]byte{tx.Encode()})
	newer[0] = fsm.CommandVersion + 1
	if err := ld.raft.Apply(newer, 10*time.Second).Error(); err != nil {
		t.Fatalf("commit the newer entry: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		stopped := 0
		for _, n := range l.Nodes {
			if errors.Is(n.fsm.Err(), fsm.ErrNewerVersion) && strings.Contains(n.localStatus().Error, "newer version") {
				stopped++
			}
		}
		if stopped == len(l.Nodes) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d replicas stopped at the newer entry", stopped, len(l.Nodes))
		}
		time.Sleep(50 * time.Millisecond)
	}
	var applied []uint64
	var heads []uint64
	for _, n := range l.Nodes {
		a, err := n.store.AppliedIndex()
		if err != nil {
			t.Fatal(err)
		}
		h, _, _ := n.store.Head()
		applied, heads = append(applied, a), append(heads, h.Height)
	}
	if slices.Min(applied) != slices.Max(applied) || slices.Min(heads) != slices.Max(heads) || heads[0] != 1 {
		t.Fatalf("replicas stopped at applied indexes %v, heights %v; want one index and height 1", applied, heads)
	}
}
