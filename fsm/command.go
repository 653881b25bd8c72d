package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"qledger/chain"
)

// CommandVersion is the command encoding version this code writes. It
// reads every version from 1 up to CommandVersion: a raft log may hold
// entries of any earlier version until a snapshot compacts them, so a
// decoder for an old version is never removed. An entry of a version
// above CommandVersion (or holding a transaction of a version above
// chain.TxVersion) was written by a newer node; DecodeCommand refuses it
// with ErrNewerVersion and the FSM stops applying there (see
// Processor.Apply) rather than skip it while newer replicas apply it.
//
// A node that starts writing version N+1 must first know that every
// member of its group reads it: see README.md, "Upgrading".
const CommandVersion uint8 = 1

// CommandType says what a raft log entry asks the state machine to do.
type CommandType uint8

// Command types.
const (
	// CmdAppendBlock appends one block built from the given transactions.
	CmdAppendBlock CommandType = 1
)

// Errors returned by command decoding and by Apply.
var (
	ErrBadCommand = errors.New("fsm: malformed command")
	// ErrNewerVersion: a log entry was written in an encoding version
	// newer than this node reads. It is not malformed, only unreadable
	// here, so it is never skipped: the replica stops applying at it
	// until it runs a version that reads it.
	ErrNewerVersion = errors.New("fsm: entry written by a newer version; upgrade this node")
	// ErrIdempotencyConflict: the idempotency key was used before with a
	// different request.
	ErrIdempotencyConflict = errors.New("fsm: idempotency key reused with a different request")
	ErrNotFound            = errors.New("fsm: not found")
	ErrBadRange            = errors.New("fsm: range out of bounds")
	ErrClosed              = errors.New("fsm: store closed")
)

// Command is the decoded form of a raft log entry.
type Command struct {
	Type CommandType
	// Timestamp is the block time in Unix nanoseconds, chosen by the
	// proposing leader.
	Timestamp int64
	// Txs are canonical transaction encodings (chain.Tx.Encode).
	Txs [][]byte
}

// EncodeAppendBlock encodes a CmdAppendBlock command:
//
//	version u8 | type u8 | timestamp i64 | count u32 | count × (len u32, tx)
func EncodeAppendBlock(timestamp int64, txs [][]byte) []byte {
	n := 14
	for _, tx := range txs {
		n += 4 + len(tx)
	}
	b := make([]byte, 0, n)
	b = append(b, CommandVersion, byte(CmdAppendBlock))
	b = binary.BigEndian.AppendUint64(b, uint64(timestamp))
	b = binary.BigEndian.AppendUint32(b, uint32(len(txs)))
	for _, tx := range txs {
		b = binary.BigEndian.AppendUint32(b, uint32(len(tx)))
		b = append(b, tx...)
	}
	return b
}

// DecodeCommand parses a command and validates every transaction in it.
// The returned transactions alias b. A command or transaction of a newer
// version is refused with ErrNewerVersion, anything else unreadable with
// ErrBadCommand.
func DecodeCommand(b []byte) (Command, error) {
	if len(b) < 2 {
		return Command{}, fmt.Errorf("%w: %d bytes", ErrBadCommand, len(b))
	}
	if b[0] > CommandVersion {
		return Command{}, fmt.Errorf("%w: command version %d, this node reads 1 to %d", ErrNewerVersion, b[0], CommandVersion)
	}
	if b[0] != CommandVersion {
		return Command{}, fmt.Errorf("%w: version %d", ErrBadCommand, b[0])
	}
	c := Command{Type: CommandType(b[1])}
	if c.Type != CmdAppendBlock {
		return Command{}, fmt.Errorf("%w: type %d", ErrBadCommand, b[1])
	}
	rest := b[2:]
	if len(rest) < 12 {
		return Command{}, fmt.Errorf("%w: truncated header", ErrBadCommand)
	}
	c.Timestamp = int64(binary.BigEndian.Uint64(rest))
	count := binary.BigEndian.Uint32(rest[8:])
	rest = rest[12:]
	if count == 0 || count > chain.MaxBlockTxs {
		return Command{}, fmt.Errorf("%w: %d transactions", ErrBadCommand, count)
	}
	c.Txs = make([][]byte, 0, min(count, 1024))
	for i := uint32(0); i < count; i++ {
		if len(rest) < 4 {
			return Command{}, fmt.Errorf("%w: transaction %d truncated", ErrBadCommand, i)
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return Command{}, fmt.Errorf("%w: transaction %d truncated", ErrBadCommand, i)
		}
		tx := rest[:n:n]
		rest = rest[n:]
		if n > 0 && tx[0] > chain.TxVersion {
			return Command{}, fmt.Errorf("%w: transaction %d has version %d, this node reads 1 to %d", ErrNewerVersion, i, tx[0], chain.TxVersion)
		}
		if _, err := chain.DecodeTx(tx); err != nil {
			return Command{}, fmt.Errorf("%w: transaction %d: %w", ErrBadCommand, i, err)
		}
		c.Txs = append(c.Txs, tx)
	}
	if len(rest) != 0 {
		return Command{}, fmt.Errorf("%w: %d trailing bytes", ErrBadCommand, len(rest))
	}
	return c, nil
}
