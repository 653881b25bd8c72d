package chain

import "encoding/binary"

// headStatementTag separates a signed head from every other message a
// node key signs.
const headStatementTag = "qledger signed head v1\x00"

// HeadStatement is what a group leader signs to vouch for its head: a
// fixed tag, the header's canonical encoding (group, height, previous
// hash, block timestamp, transaction root, and the size and root of the
// group's whole log; it hashes to the block hash), and the signing time in
// Unix nanoseconds, big-endian, so an auditor can tell how fresh the
// statement is.
func HeadStatement(h *Header, signedAt int64) []byte {
	b := append([]byte(headStatementTag), h.Encode()...)
	return binary.BigEndian.AppendUint64(b, uint64(signedAt))
}
