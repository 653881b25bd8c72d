// Package function holds the ledger formats of a deployed WebAssembly
// function that every layer shares: its Spec (identity and limits), the
// Deployment a deploy transaction carries (spec and module bytes, with a
// canonical, versioned binary encoding), and the Outcome of a call with
// the canonical ResultHash that executions are compared by.
//
// It is what the state machine (fsm) indexes and what an execution record
// refers to, without the runtime: the package imports only the standard
// library and internal/wire, so reading deployments and results does not
// link the WebAssembly runtime (execute, which runs them).
package function
