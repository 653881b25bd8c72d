package chain

import (
	"crypto/sha256"
	"fmt"

	"qledger/internal/wire"
)

// BlockVersion is the block encoding version this code writes and reads.
const BlockVersion uint8 = 1

// Limits on blocks. Decoding rejects anything larger.
const (
	MaxBlockTxs  = 1 << 16
	MaxBlockSize = 64 << 20
	// HeaderSize is the exact size of an encoded header.
	HeaderSize = 1 + 4 + 8 + 32 + 8 + 32 + 4 + 8 + 32
)

// Header is a block header. Its hash (Hash) is the block's identity and the
// next block's PrevHash.
type Header struct {
	Version uint8
	Group   uint32
	// Height is 1 for a group's first block.
	Height uint64
	// PrevHash is the previous header's hash; zero for height 1.
	PrevHash Hash
	// Timestamp is Unix nanoseconds, chosen by the leader that proposed the
	// block; never earlier than the previous block's.
	Timestamp int64
	// TxRoot is the RFC 6962 root over this block's transactions.
	TxRoot  Hash
	TxCount uint32
	// LogSize and LogRoot describe the group's whole transaction log
	// (every transaction of blocks 1..Height) after this block.
	LogSize uint64
	LogRoot Hash
}

// Encode returns the canonical HeaderSize-byte encoding.
func (h *Header) Encode() []byte {
	e := wire.Encoder{B: make([]byte, 0, HeaderSize)}
	e.U8(BlockVersion)
	e.U32(h.Group)
	e.U64(h.Height)
	e.Raw(h.PrevHash[:])
	e.U64(uint64(h.Timestamp))
	e.Raw(h.TxRoot[:])
	e.U32(h.TxCount)
	e.U64(h.LogSize)
	e.Raw(h.LogRoot[:])
	return e.B
}

// Hash is SHA-256 of the encoded header.
func (h *Header) Hash() Hash { return sha256.Sum256(h.Encode()) }

func decodeHeader(d *wire.Decoder) Header {
	var h Header
	h.Version = d.U8("block version")
	if d.Err() == nil && h.Version != BlockVersion {
		d.Fail(fmt.Errorf("%w: block version %d", ErrUnknownVersion, h.Version))
	}
	h.Group = d.U32("group")
	h.Height = d.U64("height")
	h.PrevHash = readHash(d, "previous hash")
	h.Timestamp = int64(d.U64("timestamp"))
	h.TxRoot = readHash(d, "tx root")
	h.TxCount = d.U32("tx count")
	h.LogSize = d.U64("log size")
	h.LogRoot = readHash(d, "log root")
	return h
}

// DecodeHeader parses an encoded header.
func DecodeHeader(b []byte) (Header, error) {
	d := newDecoder(b)
	h := decodeHeader(d)
	if err := d.Finish(); err != nil {
		return Header{}, fmt.Errorf("chain: decode header: %w", err)
	}
	return h, nil
}

// Block is a header and the canonical encodings of its transactions, in
// log order.
type Block struct {
	Header Header
	Txs    [][]byte
}

// Encode returns the canonical encoding: the header, then each transaction
// with a uint32 length prefix. Header.TxCount must equal len(Txs).
func (b *Block) Encode() []byte {
	n := HeaderSize
	for _, tx := range b.Txs {
		n += 4 + len(tx)
	}
	e := wire.Encoder{B: make([]byte, 0, n)}
	e.Raw(b.Header.Encode())
	for _, tx := range b.Txs {
		e.Bytes32(tx)
	}
	return e.B
}

// DecodeBlock parses an encoded block, including every transaction in it.
func DecodeBlock(raw []byte) (Block, error) {
	if len(raw) > MaxBlockSize {
		return Block{}, fmt.Errorf("chain: decode block: %w: %d bytes, limit %d", ErrTooLarge, len(raw), MaxBlockSize)
	}
	d := newDecoder(raw)
	b := Block{Header: decodeHeader(d)}
	if d.Err() == nil && b.Header.TxCount > MaxBlockTxs {
		d.Fail(fmt.Errorf("%w: %d transactions, limit %d", ErrTooLarge, b.Header.TxCount, MaxBlockTxs))
	}
	if d.Err() == nil {
		b.Txs = make([][]byte, 0, b.Header.TxCount)
	}
	for i := uint32(0); d.Err() == nil && i < b.Header.TxCount; i++ {
		tx := d.Bytes32("transaction", MaxDeployPayloadSize+1024)
		if d.Err() != nil {
			break
		}
		if _, err := DecodeTx(tx); err != nil {
			d.Fail(fmt.Errorf("transaction %d: %w", i, err))
			break
		}
		b.Txs = append(b.Txs, tx)
	}
	if err := d.Finish(); err != nil {
		return Block{}, fmt.Errorf("chain: decode block: %w", err)
	}
	return b, nil
}

// LeafHashes returns the Merkle leaf hash of each transaction.
func (b *Block) LeafHashes() []Hash {
	out := make([]Hash, len(b.Txs))
	for i, tx := range b.Txs {
		out[i] = LeafHash(tx)
	}
	return out
}

// NextBlock builds the block that follows prev (nil for a group's first
// block) holding txs, and appends their leaves to log, which must describe
// the log after prev. emit receives every completed Merkle node, as in
// Frontier.Append. It is deterministic: the same inputs give the same block
// on every replica. The timestamp is raised to prev's if it is earlier.
func NextBlock(prev *Header, group uint32, timestamp int64, txs [][]byte, log *Frontier, emit func(level uint8, index uint64, h Hash)) (Block, error) {
	if len(txs) == 0 {
		return Block{}, fmt.Errorf("%w: a block needs at least one transaction", ErrInvalid)
	}
	if len(txs) > MaxBlockTxs {
		return Block{}, fmt.Errorf("%w: %d transactions, limit %d", ErrTooLarge, len(txs), MaxBlockTxs)
	}
	h := Header{Version: BlockVersion, Group: group, Height: 1, Timestamp: timestamp, TxCount: uint32(len(txs))}
	if prev != nil {
		h.Height = prev.Height + 1
		h.PrevHash = prev.Hash()
		if h.Timestamp < prev.Timestamp {
			h.Timestamp = prev.Timestamp
		}
	}
	if prev == nil && log.Size() != 0 || prev != nil && log.Size() != prev.LogSize {
		return Block{}, fmt.Errorf("%w: log has %d leaves, previous block says %d", ErrInvalid, log.Size(), logSizeOf(prev))
	}
	leaves := make([]Hash, len(txs))
	for i, tx := range txs {
		leaves[i] = LeafHash(tx)
	}
	h.TxRoot = RootFromLeaves(leaves)
	for _, l := range leaves {
		log.Append(l, emit)
	}
	h.LogSize = log.Size()
	h.LogRoot = log.Root()
	return Block{Header: h, Txs: txs}, nil
}

func logSizeOf(h *Header) uint64 {
	if h == nil {
		return 0
	}
	return h.LogSize
}
