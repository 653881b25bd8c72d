// Package execute runs serverless functions as deterministic, sandboxed
// WebAssembly: WASI command modules (GOOS=wasip1 programs, or anything else
// exporting _start) under wazero's compiler engine.
//
// A function is deployed once per node (Runtime.Deploy): its
// function.Deployment — the payload of a deploy transaction, with the
// canonical binary encoding of package function — is validated, the module is compiled (or loaded from the on-disk
// compilation cache) and kept by its SHA-256 code hash. Each invocation
// (Runtime.Invoke) runs in a fresh instance:
//
//   - stdin is the request payload, stdout the response (at most
//     Spec.MaxOutputBytes), stderr a log truncated at Spec.MaxStderrBytes;
//   - args are [function name]; there is no environment and no file system;
//   - the wall clock, the monotonic clock and random_get are derived from
//     the request ID alone, and sleeping advances the virtual clock instead
//     of waiting;
//   - memory is limited to Spec.MemoryPages and time to Spec.Timeout;
//   - only wasi_snapshot_preview1 can be imported: a module that imports
//     anything else (say env.host_time) is refused at deploy time.
//
// So the same request produces the same Result.Hash on every node, which is
// how a verifier's re-execution is compared with the executor's. A trap, a
// timeout, a limit hit or a non-zero exit status is an error Outcome,
// never a success. See DESIGN.md for exactly what determinism covers.
//
// execute does not import raft, the cluster or the API; it is a library the
// node wires in.
package execute
