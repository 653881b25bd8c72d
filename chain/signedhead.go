package chain

// headStatementTag separates a signed head from every other message a
// node key signs.
const headStatementTag = "qledger signed head v1\x00"

// HeadStatement is what a group leader signs to vouch for its head: a
// fixed tag followed by the header's canonical encoding, which holds the
// group, height, previous hash, timestamp, transaction root and the size
// and root of the group's whole log (and hashes to the block hash).
func HeadStatement(h *Header) []byte {
	return append([]byte(headStatementTag), h.Encode()...)
}
