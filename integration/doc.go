// Package integration holds multi-node and multi-process tests of qledger:
// failover, restarts, snapshots, idempotency across leader changes, and
// nodes started as separate `qledger node` processes.
package integration
