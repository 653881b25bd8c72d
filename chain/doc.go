// Package chain defines a node group's ledger: transactions, blocks, their
// canonical binary encoding, the RFC 6962 Merkle tree over the group's whole
// transaction log, inclusion and consistency proofs (RFC 9162 §2.1.3–2.1.4),
// and whole-chain verification.
//
// Everything here is pure: no clock, no randomness, no I/O beyond the
// io.Reader a caller passes in. The same bytes decode to the same values on
// every machine, so every replica of a group computes the same block hashes.
//
// A group's chain starts at height 1 (height 0 means "no blocks yet"). Each
// block header commits to its predecessor's hash, to the Merkle root of its
// own transactions, and to the size and root of the group's transaction log
// after the block, so any two heads can be compared with a consistency proof.
package chain
