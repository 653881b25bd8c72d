package cluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"qledger/pki"
)

// Internal RPC: one request and one response per exchange over pooled
// connections on the shared listener.
//
//	request:  method u8 | length u32 | JSON body
//	response: status u8 | length u32 | JSON body (status 0) or error text
//
// A few methods carry binary bodies of their own instead (rawBody,
// electwire.go).
const maxFrame = 96 << 20

type method uint8

const (
	mSubmit method = iota + 1
	mJoin
	mRemove
	mQuery
	mStatus
	mHealth
	mElectCommit
	mElectReveal
	mExecute
	mInvoke
	mScrub
	mRepair
	mHeaderAt
	mSubmitBatch // forwarded writes, answered one by one (forward.go)
	// mElectNonce, mElectRevealRun and mInvokeBinary carry binary bodies
	// (electwire.go, invokewire.go); an older node refuses them
	// (refusedMethod).
	mElectNonce
	mElectRevealRun
	mInvokeBinary
)

// unknownMethod is the text every release answers an unknown method with.
const unknownMethod = "cluster: unknown rpc method"

// refusedMethod reports whether err is a node's refusal of a method it
// does not know: an older release, before the method existed. Nothing was
// done, so the caller may fall back to the older methods.
func refusedMethod(err error) bool {
	var re *remoteError
	return errors.As(err, &re) && errors.Is(err, ErrBadRequest) && strings.HasPrefix(re.msg, unknownMethod)
}

// rawBody is a handler's answer that is already encoded: the server
// writes it as it is instead of as JSON.
type rawBody []byte

// Error codes carried in responses; they map back to the package errors so
// errors.Is works across a hop.
var errCodes = []error{nil, ErrNotLeader, ErrNoLeader, ErrUnknownGroup, ErrBadRequest, ErrNotFound, ErrConflict, ErrShutdown, ErrTimeout, ErrUnknownOutcome, ErrTooLarge, ErrStore, ErrIDConflict, ErrNoCandidates, ErrNoAgreement, ErrWrongNode, ErrCatchingUp, ErrChainCorrupt, ErrStopped, ErrUnsupported}

func codeOf(err error) uint8 {
	for i, e := range errCodes[1:] {
		if errors.Is(err, e) {
			return uint8(i + 1)
		}
	}
	return 255
}

// remoteError is an error returned by another node.
type remoteError struct {
	base error
	msg  string
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.base }

// remoteErr is the error another node answered with status and msg.
func remoteErr(status uint8, msg string) *remoteError {
	var base error
	if int(status) < len(errCodes) {
		base = errCodes[status]
	}
	return &remoteError{base: base, msg: msg}
}

func writeFrame(w *bufio.Writer, kind uint8, body []byte) error {
	var hdr [5]byte
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(body)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	return w.Flush()
}

// frameChunk is the first buffer a frame body is read into; the buffer
// doubles only as bytes actually arrive, so a peer that declares a large
// frame and sends little costs little memory.
const frameChunk = 64 << 10

func readFrame(r *bufio.Reader) (uint8, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("%w: frame of %d bytes, limit %d", ErrTooLarge, n, maxFrame)
	}
	body, err := readBody(r, int(n))
	if err != nil {
		return 0, nil, err
	}
	return hdr[0], body, nil
}

// readBody reads exactly n bytes, growing its buffer (at most to twice
// the bytes received so far) as they arrive.
func readBody(r io.Reader, n int) ([]byte, error) {
	body := make([]byte, 0, min(n, frameChunk))
	for len(body) < n {
		if len(body) == cap(body) {
			body = append(make([]byte, 0, min(n, 2*cap(body))), body...)
		}
		m, err := r.Read(body[len(body):cap(body)])
		body = body[:len(body)+m]
		if err != nil && len(body) < n {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return body, nil
}

type peerKey struct{}

// peerNode is the node ID in the calling node's TLS certificate; ok is
// false on a plain-TCP cluster.
func peerNode(ctx context.Context) (id string, ok bool) {
	p, ok := ctx.Value(peerKey{}).(pki.Identity)
	return p.NodeID, ok
}

// rpcHandler serves one method: it decodes its own body.
type rpcHandler func(ctx context.Context, body []byte) (any, error)

type rpcServer struct {
	ln       net.Listener
	handlers map[method]rpcHandler
	logger   hclog.Logger
	timeout  time.Duration
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool
}

func (s *rpcServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(c)
	}
}

func (s *rpcServer) close() {
	s.mu.Lock()
	s.done = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *rpcServer) handle(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	base := context.Background()
	if tc, ok := c.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		if id, ok := pki.PeerIdentity(&cs); ok {
			base = context.WithValue(base, peerKey{}, id)
		}
	}
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	// A new connection carries its first request at once; a pooled one
	// may idle between requests, but once a frame starts it must complete
	// within the RPC timeout, so a peer that stalls mid-frame loses the
	// connection.
	_ = c.SetReadDeadline(time.Now().Add(s.timeout))
	for first := true; ; first = false {
		if !first {
			_ = c.SetReadDeadline(time.Time{})
			if _, err := r.Peek(1); err != nil {
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(s.timeout))
		}
		m, body, err := readFrame(r)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.logger.Debug("rpc read failed", "remote", c.RemoteAddr(), "error", err)
			}
			return
		}
		status, out := uint8(0), []byte(nil)
		h, ok := s.handlers[method(m)]
		if !ok {
			status, out = codeOf(ErrBadRequest), []byte(fmt.Sprintf("%s %d", unknownMethod, m))
		} else {
			ctx, cancel := context.WithTimeout(base, s.timeout)
			res, err := h(ctx, body)
			cancel()
			if raw, ok := res.(rawBody); ok && err == nil {
				out = raw
			} else if err == nil {
				out, err = json.Marshal(res)
			}
			if err != nil {
				status, out = codeOf(err), []byte(err.Error())
			}
		}
		_ = c.SetWriteDeadline(time.Now().Add(s.timeout))
		if err := writeFrame(w, status, out); err != nil {
			return
		}
	}
}

// rpcClient keeps idle connections per address.
type rpcClient struct {
	timeout time.Duration
	dialer  dialer
	// expect names the node believed to be at an address ("" if
	// unknown); with TLS the peer's certificate must carry it.
	expect func(addr string) string

	mu   sync.Mutex
	idle map[string][]*rpcConn
	shut bool
}

type rpcConn struct {
	c    net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	peer string // the node ID in the peer's certificate; "" without TLS
}

// maxIdlePerAddr bounds the idle connections kept per address. It must
// cover the peak of concurrent requests to one peer (a follower forwards
// every write its API receives to the leader, one request per pooled
// connection): a connection closed on return for want of room is dialed
// again by the next request, and with TLS each dial is a full handshake
// (ML-KEM and ECDSA), which at 256 API clients cost a follower 12% of its
// CPU when the bound was 32. Idle connections only accumulate up to the
// concurrency actually reached.
const maxIdlePerAddr = 256

func newRPCClient(timeout time.Duration, d dialer, expect func(string) string) *rpcClient {
	if expect == nil {
		expect = func(string) string { return "" }
	}
	return &rpcClient{timeout: timeout, dialer: d, expect: expect, idle: map[string][]*rpcConn{}}
}

// get returns an idle connection to addr or dials one; the dial (TCP and
// TLS handshake) takes at most the client's timeout and ends with ctx.
func (c *rpcClient) get(ctx context.Context, addr, want string) (*rpcConn, error) {
	c.mu.Lock()
	if c.shut {
		c.mu.Unlock()
		return nil, ErrShutdown
	}
	for l := c.idle[addr]; len(l) > 0; l = c.idle[addr] {
		rc := l[len(l)-1]
		c.idle[addr] = l[:len(l)-1]
		if want != "" && rc.peer != "" && rc.peer != want {
			rc.c.Close() // another node now answers at addr
			continue
		}
		c.mu.Unlock()
		return rc, nil
	}
	c.mu.Unlock()
	if want == "" && c.dialer.creds != nil {
		want = c.expect(addr)
	}
	conn, err := c.dialer.dial(ctx, addr, connRPC, c.timeout, want)
	if err != nil {
		return nil, err
	}
	rc := &rpcConn{c: conn, r: bufio.NewReader(conn), w: bufio.NewWriter(conn)}
	if tc, ok := conn.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		if len(cs.PeerCertificates) > 0 {
			if id, err := pki.IdentityOf(cs.PeerCertificates[0]); err == nil {
				rc.peer = id.NodeID
			}
		}
	}
	return rc, nil
}

func (c *rpcClient) put(addr string, rc *rpcConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shut || len(c.idle[addr]) >= maxIdlePerAddr {
		rc.c.Close()
		return
	}
	c.idle[addr] = append(c.idle[addr], rc)
}

func (c *rpcClient) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.shut = true
	for _, l := range c.idle {
		for _, rc := range l {
			rc.c.Close()
		}
	}
	c.idle = nil
}

// call sends one request to addr and decodes the result into out.
func (c *rpcClient) call(ctx context.Context, addr string, m method, in, out any) error {
	return c.callAs(ctx, addr, "", m, in, out)
}

// callAs is call to the node with ID want at addr: with TLS its
// certificate must name want. With want "", a new connection expects the
// node the cluster view places at addr, if any.
func (c *rpcClient) callAs(ctx context.Context, addr, want string, m method, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	resp, err := c.exchange(ctx, addr, want, m, body)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(resp, out); err != nil {
		return fmt.Errorf("cluster: rpc to %s: bad response: %w", addr, err)
	}
	return nil
}

// callRaw sends body, already encoded, to addr and returns the response
// body as it came, for the methods with binary bodies.
func (c *rpcClient) callRaw(ctx context.Context, addr string, m method, body []byte) ([]byte, error) {
	return c.exchange(ctx, addr, "", m, body)
}

// exchange sends one request frame and reads its response: the body of a
// status 0 answer, or the remote error.
func (c *rpcClient) exchange(ctx context.Context, addr, want string, m method, body []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cluster: rpc to %s: %w", addr, context.Cause(ctx))
	}
	rc, err := c.get(ctx, addr, want)
	if err != nil {
		return nil, fmt.Errorf("cluster: rpc to %s: %w", addr, err)
	}
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = rc.c.SetDeadline(deadline)
	// A cancelled ctx ends the call at once: the connection's deadline is
	// moved to now, and the connection is not reused.
	// The callback gets the connection itself: rc is set to nil below.
	conn := rc.c
	cancelled := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	status, resp, err := func() (uint8, []byte, error) {
		if err := writeFrame(rc.w, uint8(m), body); err != nil {
			return 0, nil, err
		}
		return readFrame(rc.r)
	}()
	if !cancelled() && err == nil {
		rc.c.Close()
		rc = nil
	}
	if err != nil {
		rc.c.Close()
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil, fmt.Errorf("cluster: rpc to %s: %w", addr, context.Cause(ctx))
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("%w: rpc to %s", ErrTimeout, addr)
		}
		return nil, fmt.Errorf("cluster: rpc to %s: %w", addr, err)
	}
	if rc != nil {
		_ = rc.c.SetDeadline(time.Time{})
		c.put(addr, rc)
	}
	if status != 0 {
		return nil, remoteErr(status, string(resp))
	}
	return resp, nil
}
