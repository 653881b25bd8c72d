package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"qledger/pki"
)

// Connection types: the first byte a dialer writes on the shared listener.
const (
	connRaft     byte = 1
	connRPC      byte = 2
	connSnapshot byte = 3 // a replica's snapshot for a peer rebuilding its store (peersnap.go)
)

// mux accepts connections on one listener and hands each to the
// sub-listener named by its first byte. With TLS, every connection first
// completes a TLS 1.3 handshake in which the peer presents a node
// certificate from the cluster CA; the type byte is the first byte inside
// the encrypted stream.
type mux struct {
	ln     net.Listener
	tls    *tls.Config // nil: plain TCP
	logger hclog.Logger
	subs   map[byte]*subListener

	closeOnce sync.Once
	done      chan struct{}
}

func newMux(ln net.Listener, logger hclog.Logger, kinds ...byte) *mux {
	m := &mux{ln: ln, logger: logger, subs: map[byte]*subListener{}, done: make(chan struct{})}
	for _, k := range kinds {
		m.subs[k] = &subListener{m: m, ch: make(chan net.Conn, 16)}
	}
	return m
}

func (m *mux) serve() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.logger.Error("accept failed", "error", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		go m.route(c)
	}
}

// handshakeTimeout bounds a peer's TLS handshake and type byte.
const handshakeTimeout = 5 * time.Second

func (m *mux) route(c net.Conn) {
	var b [1]byte
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	if m.tls != nil {
		tc := tls.Server(c, m.tls)
		if err := tc.Handshake(); err != nil {
			m.logger.Warn("connection refused: TLS handshake failed", "remote", c.RemoteAddr(), "error", err)
			c.Close()
			return
		}
		c = tc
	}
	if _, err := c.Read(b[:]); err != nil {
		c.Close()
		return
	}
	// The consumer owns the connection's deadlines from here: raft keeps
	// long-lived streams, the RPC server bounds each frame it reads.
	_ = c.SetDeadline(time.Time{})
	sub, ok := m.subs[b[0]]
	if !ok {
		m.logger.Warn("connection with unknown type byte refused", "remote", c.RemoteAddr(), "byte", b[0])
		c.Close()
		return
	}
	select {
	case sub.ch <- c:
	case <-m.done:
		c.Close()
	}
}

// refusedVersion logs a peer refused for its protocol version.
func (m *mux) refusedVersion(remote net.Addr, err error) {
	m.logger.Error("peer refused: no common protocol version; upgrade one release at a time", "remote", remote, "error", err)
}

func (m *mux) close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.done)
		err = m.ln.Close()
	})
	return err
}

// subListener is the net.Listener of one connection type.
type subListener struct {
	m  *mux
	ch chan net.Conn
}

func (l *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.m.done:
		return nil, net.ErrClosed
	}
}

func (l *subListener) Close() error   { return l.m.close() }
func (l *subListener) Addr() net.Addr { return l.m.ln.Addr() }

// dialer opens connections to other nodes' shared listeners.
type dialer struct {
	creds *pki.Credentials // nil: plain TCP
	// proto is the protocol versions offered (zero: this build's).
	proto protocols
}

func (d dialer) protocols() protocols {
	if d.proto == (protocols{}) {
		return localProtocols()
	}
	return d.proto
}

// dial dials addr and announces the connection type. With TLS the server
// must present a node certificate from the cluster CA and, if expect is
// set, one naming that node ID: a node that answers at a configured
// address under another ID is refused. The two sides agree on a protocol
// version (see ProtocolVersion); a server with none in common is refused
// with ErrProtocolVersion. The dial (TCP and TLS handshake) takes at
// most timeout, and ends at once when ctx does.
func (d dialer) dial(ctx context.Context, addr string, kind byte, timeout time.Duration, expect string) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: timeout}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	if d.creds != nil {
		cfg := d.creds.ClientConfig(func(id pki.Identity) error {
			if expect != "" && id.NodeID != expect {
				return fmt.Errorf("%w: %s presents node %.12s, expected %.12s", ErrWrongNode, addr, id.NodeID, expect)
			}
			return nil
		})
		p := d.protocols()
		cfg.NextProtos = p.offer()
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("cluster: dial %s: %w", addr, dialError(err, p))
		}
		if _, err := p.agreed(tc.ConnectionState().NegotiatedProtocol); err != nil {
			c.Close()
			return nil, fmt.Errorf("cluster: dial %s: %w", addr, err)
		}
		c = tc
	}
	if _, err := c.Write([]byte{kind}); err != nil {
		c.Close()
		return nil, fmt.Errorf("cluster: dial %s: %w", addr, err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// raftLayer is raft's StreamLayer over the mux.
type raftLayer struct {
	*subListener
	advertise net.Addr
	dialer    dialer
	// expect names the raft server ID configured at an address ("" if
	// none); with TLS the peer's certificate must carry it.
	expect func(addr string) string
	// stop, closed when the node closes, ends the dials in progress and
	// closes the connections dialed: raft's shutdown waits for its RPCs,
	// and a dial to an unreachable peer, or a call waiting for its answer,
	// would otherwise hold it for the whole transport timeout.
	stop <-chan struct{}

	mu      sync.Mutex
	conns   map[net.Conn]struct{} // dialed and not closed
	stopped bool
	watcher sync.Once
}

var _ raft.StreamLayer = (*raftLayer)(nil)

func (r *raftLayer) Addr() net.Addr { return r.advertise }

func (r *raftLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if r.stop != nil {
		r.watcher.Do(func() { go r.closeOnStop() })
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	c, err := r.dialer.dial(ctx, string(addr), connRaft, timeout, r.expect(string(addr)))
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		c.Close()
		return nil, ErrShutdown
	}
	if r.conns == nil {
		r.conns = map[net.Conn]struct{}{}
	}
	r.conns[c] = struct{}{}
	return &raftConn{Conn: c, l: r}, nil
}

// closeOnStop closes every connection dialed once the node stops.
func (r *raftLayer) closeOnStop() {
	<-r.stop
	r.mu.Lock()
	conns := r.conns
	r.conns, r.stopped = nil, true
	r.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

// raftConn is a connection raftLayer dialed; closing it forgets it.
type raftConn struct {
	net.Conn
	l *raftLayer
}

func (c *raftConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c.Conn)
	c.l.mu.Unlock()
	return c.Conn.Close()
}
