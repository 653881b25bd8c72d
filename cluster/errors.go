package cluster

import (
	"errors"
	"fmt"
)

// Errors returned by a Node. Raft's and the store's errors are converted to
// these at the package boundary.
var (
	ErrNotLeader    = errors.New("cluster: not the group leader")
	ErrNoLeader     = errors.New("cluster: group has no leader")
	ErrUnknownGroup = errors.New("cluster: no known node serves that group")
	ErrBadRequest   = errors.New("cluster: bad request")
	ErrNotFound     = errors.New("cluster: not found")
	ErrConflict     = errors.New("cluster: idempotency key reused with a different request")
	ErrShutdown     = errors.New("cluster: node is shutting down")
	ErrTimeout      = errors.New("cluster: timed out")
	ErrTooLarge     = errors.New("cluster: request too large")
	// ErrUnknownOutcome: the write was proposed but leadership was lost
	// before its outcome was known; it may or may not have committed.
	// Retrying with the same idempotency key is safe.
	ErrUnknownOutcome = errors.New("cluster: outcome unknown after leadership change")
	ErrStore          = errors.New("cluster: state machine failed")
	// ErrStopped: this replica's state machine is stopped by a storage
	// failure (a full disk); it resumes by itself once the store takes
	// writes again. Nothing was proposed, or read.
	ErrStopped = errors.New("cluster: state machine stopped by a storage failure until space returns")
	// ErrWrongNode: a peer's certificate names another node than the one
	// expected at its address, or than the one it claims to be.
	ErrWrongNode = errors.New("cluster: peer certificate names another node")
	// ErrCatchingUp: after a machine crash this replica rebuilds its
	// chain store from raft and serves no stale read until it holds at
	// least what it held before, so a reader never sees it go back.
	ErrCatchingUp = errors.New("cluster: replica is catching up after an unclean stop")
	// ErrChainCorrupt: this replica's chain store is damaged (see
	// ChainAlarm); it serves none of its group's reads until repaired.
	ErrChainCorrupt = errors.New("cluster: chain store damaged")
	// ErrUnsupported: the node that served a read runs an older release
	// that does not know it (during a rolling upgrade). The read works
	// once that node is upgraded; nothing else is wrong.
	ErrUnsupported = errors.New("cluster: the node that answered runs an older release without this read")
	// ErrNotEmpty: Seed was given a data directory that already holds a
	// node's state.
	ErrNotEmpty = errors.New("cluster: data directory already holds a node's state")
)

// Why a request forwarded to the group leader was abandoned (callLeader):
// its outcome is unknown, and it is sent again.
var (
	errLeaderMoved = errors.New("cluster: the group leader changed while the request was in flight")
	errHopTimeout  = errors.New("cluster: the group leader did not answer in time")
)

// groupUnreachable is the error of a request forwarded to group g when
// every member of g it tried failed at the transport (last is the last
// failure): kind wraps it, ErrNoLeader for a read or an invocation (run
// again under the same request ID, it runs once) and ErrUnknownOutcome
// for a write (it may have arrived before the connection broke), so the
// API answers 503 and the client retries, as it would for its own group,
// instead of passing a bare connection error on as a 500.
func groupUnreachable(kind error, g int, last error) error {
	return fmt.Errorf("%w: group %d unreachable: %v", kind, g, last)
}
