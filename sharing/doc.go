// Package sharing splits data into n shares, one per node group, so that
// any t of them recover it (1 <= t <= n <= 255). It implements the
// mathematics of the SSDSM paper's CRT algorithm (its primes, though, are
// a public family named by index, not drawn per split: see DESIGN.md), a
// correct Asmuth-Bloom threshold scheme, and the default: AES-256-GCM
// encryption with Reed-Solomon dispersal of the ciphertext and
// Asmuth-Bloom sharing of the key.
//
// One API serves the three modes: Split and Recover work in memory;
// SplitStream and RecoverStream work on an io.Reader and n io.Writers (and
// back) in segments, so data larger than memory works. Every Share is
// self-describing (scheme, version, t, n, index, data length, the
// parameters its recovery needs, payload, SHA-256 hash) and has a
// canonical, versioned binary encoding (MarshalBinary, DecodeShare) and a
// documented JSON form (MarshalJSON, UnmarshalJSON) for export files. Share
// i is meant for node group i. All functions are safe for concurrent use;
// errors are the named Err* values and *ShareError, for errors.Is/As.
// Empty data is refused (ErrEmptyData) in every mode.
//
// # Modes
//
// Dispersal (default). A fresh random 256-bit key K; AES-256-GCM under a
// key derived from K (HKDF-SHA256, salt = split ID) encrypts the data in
// segments (1 MiB by default) with nonces prefix||counter||last-flag, so
// segments cannot be reordered, dropped or truncated unnoticed; each
// segment's ciphertext is cut into t data shards plus n-t Reed-Solomon
// parity shards (klauspost/reedsolomon, GF(2^8)); share i gets shard i of
// every segment and an Asmuth-Bloom share of K. A final AES-GCM tag (the
// "manifest") authenticates, as additional data, the RFC 6962 Merkle root
// of all n shard hashes, the length and the segment count; every share
// carries the root, the tag and its own audit path. Per node:
// ceil((|D| + 16 per segment)/t) payload bytes (at most t-1 bytes more per
// segment for padding), 5 bytes per segment of framing, and 181 to 468
// bytes of header, key share, trailer and hash (the key share is
// 49 + ceil(t/8) bytes, the audit path up to 8 x 32). For (15, 20) and
// 1 MiB that is 6.70% of the data.
//
// What it protects: anyone holding at most t-1 shares learns nothing about
// the data except what the headers state in clear (exact length, t, n,
// split ID, segment size), assuming AES-256 is a pseudorandom permutation:
// the key shares they hold leave K within statistical distance 2^-128 of
// uniform (see Asmuth-Bloom below), and the shards are ciphertext. Anyone
// holding t shares recovers K and the data: access control to shares is
// the ledger's job. Integrity against anyone without t shares: a changed
// shard, key share, root, tag or length is detected, by the share's hash,
// its Merkle proof against the authenticated root, the segment tags or
// the manifest tag (ErrTampered, ErrAuthentication, ErrMixedShares,
// ErrInconsistent), and never produces wrong output. Share hashes are
// unkeyed: they catch corruption and naive tampering, not a node that
// re-hashes a share it altered; such a share is still caught by its
// Merkle proof. Summary.Digest is a keyed digest (HMAC-SHA256 under a key
// derived from K, over the split parameters, length and Merkle root): it
// identifies the data for a later check without letting anyone confirm a
// guess of the data, as a plain hash would; it binds the data through the
// root, the shard hashes and AES-GCM. Holders of t shares can compute it
// for other data, so against them it is no integrity guarantee.
//
// Paper (SSDSM). The data is read as big-endian integers of C bytes (the
// whole data when it is short, as in the paper) and share i holds every
// chunk modulo the i-th public k-bit prime, k ~ 8C/t + 1 (a multiple of 32,
// at most 512 bits, so C = floor(t(k-1)/8) and any t primes exceed every
// chunk). Recovery uses Garner's algorithm with precomputed constants; the
// result must match the SHA-256 digest of the data carried in every share.
// Improvements that do not change the mathematics: the primes are fixed,
// public and derived deterministically (so shares name them by index
// instead of storing them), their constants are cached, and the data is
// chunked so that cost grows linearly with size. Per node: ceil(|D|/C)
// residues of k/8 bytes (about |D|/t; 6.68% for (15, 20) and 1 MiB) plus
// 111 bytes and 5 per frame; SSDSM stores the prime beside each residue, about 2|D|/t (its
// reported 13.5% for (15, 20)).
//
// The paper mode is not confidential. It is a ramp scheme: with no random
// blinding factor, each residue is a deterministic function of the data,
// and j shares reveal every chunk D_c modulo the product of j primes,
// about j*k of its 8C ~ t*k bits. So t-1 shares reveal about (t-1)/t of
// the information in every chunk, one share about 1/t; any chunk shorter
// than j*(k-1)/8 bytes, such as a short last chunk, is revealed completely
// by j shares (a single share reveals any chunk below its prime). Equal
// data gives equal shares in every split, and the SHA-256 digest in every
// share confirms any guess of the data. The mode exists to reproduce and
// measure the paper; do not use it for confidential data. Integrity: the
// digest detects wrong results, without saying which share was bad.
//
// Asmuth-Bloom. For secrets of up to MaxSecretSize bytes: d0 = 2^(8|s|),
// public pairwise coprime odd moduli of k = 8|s| + 136 + t bits, random
// alpha with y = s + alpha*d0 below the product M of the t smallest
// moduli, share i = y mod d_i. Any t shares give y and s = y mod d0; fewer
// are refused with ErrTooFewShares (the arithmetic on fewer residues gives
// a wrong value). The threshold condition is checked with a 128-bit
// margin, so t-1 shares leave the secret within statistical distance
// 2^-128 of its prior distribution (about 2^-135 by the bound in
// asmuthbloom.go). Each share is as large as the secret plus
// 17 + ceil(t/8) bytes: a correct
// threshold scheme cannot have smaller shares, which is why large data
// uses dispersal. Integrity: share hashes only; a re-hashed forged residue
// is caught when more than t shares are given (ErrInconsistent) or when
// the result is out of range, and otherwise gives a wrong secret.
//
// See DESIGN.md for the share encoding, the derivation of the public
// moduli and measurements.
package sharing
