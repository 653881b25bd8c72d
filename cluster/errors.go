package cluster

import "errors"

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
	// ErrWrongNode: a peer's certificate names another node than the one
	// expected at its address, or than the one it claims to be.
	ErrWrongNode = errors.New("cluster: peer certificate names another node")
)
