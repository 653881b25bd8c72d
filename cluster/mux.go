package cluster

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Connection types: the first byte a dialer writes on the shared listener.
const (
	connRaft byte = 1
	connRPC  byte = 2
)

// mux accepts connections on one listener and hands each to the
// sub-listener named by its first byte. Later a TLS listener can wrap the
// base listener without changing anything above it.
type mux struct {
	ln     net.Listener
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

func (m *mux) route(c net.Conn) {
	var b [1]byte
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(b[:]); err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
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

// dialType dials addr and announces the connection type.
func dialType(addr string, kind byte, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte{kind}); err != nil {
		c.Close()
		return nil, fmt.Errorf("cluster: dial %s: %w", addr, err)
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}

// raftLayer is raft's StreamLayer over the mux.
type raftLayer struct {
	*subListener
	advertise net.Addr
}

var _ raft.StreamLayer = (*raftLayer)(nil)

func (r *raftLayer) Addr() net.Addr { return r.advertise }

func (r *raftLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dialType(string(addr), connRaft, timeout)
}
