// Package faults runs a qledger cluster as separate `qledger node`
// processes, each in its own Linux network namespace with its own address
// on a bridge, with mutual TLS from `qledger ca`, and injects faults into
// it while clients write, read and invoke a deployed function: network
// partitions, one-way loss, paused and killed processes, full disks, and
// membership changes (a voter leaving, cut off or not; a standby joining;
// executors scaling out and in). Every client operation is recorded in a
// History; after the faults heal, checkers decide whether the cluster kept
// its promises:
//
//   - durability: every acknowledged write is in the log exactly once, at
//     the position its receipt named, with a valid inclusion proof; a write
//     whose outcome the client never learned is there at most once;
//   - linearizability: reads at linearizable and default level and the
//     writes and invocations form a history of one append-only log,
//     decided exactly per round (order, in O(n log n) time and O(n)
//     memory) and by porcupine per nemesis window, within a time and
//     memory budget;
//   - stale reads never show an uncommitted transaction and never go
//     backwards on one node;
//   - chain safety: every head any client saw, signed or not, lies on the
//     one final chain, and no two signed heads of a height differ;
//   - execution: one committed execution record per (caller, request ID)
//     at most, exactly one for an acknowledged invocation, answered with
//     its result on every retry, and none for a request never sent.
//
// A cluster has one group, or two (Options.Groups): each step's nemesis
// then acts on one group while the other must go on committing, and the
// checkers run per group.
//
// The harness needs root and network namespaces (CI runs as root); without
// them its tests skip and say why. The checkers are plain functions over a
// History and need neither.
package faults
