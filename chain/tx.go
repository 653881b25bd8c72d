package chain

import (
	"crypto/sha256"
	"fmt"

	"qledger/internal/wire"
)

// TxVersion is the transaction encoding version this code writes and reads.
const TxVersion uint8 = 1

// Limits on transaction fields. Decoding rejects anything larger.
const (
	MaxPayloadSize = 1 << 20 // 1 MiB
	// MaxDeployPayloadSize bounds a deploy transaction, which carries a
	// whole WebAssembly module (a Go wasip1 module is a few MiB).
	MaxDeployPayloadSize = 16 << 20
	MaxKeySize           = 256 // idempotency key bytes
	MaxSubmitterSize     = 256 // submitter identity bytes
	NonceSize            = 16
)

// TxKind says how a transaction's payload is to be read. The ledger core
// treats every payload as opaque bytes; later kinds give it structure.
type TxKind uint8

// Transaction kinds.
const (
	// TxData is an opaque payload recorded as submitted.
	TxData TxKind = 1
	// TxShard carries a shard record (package shard): one segment of one
	// share of a confidentially shared data item.
	TxShard TxKind = 2
	// TxDeploy carries a function deployment (function.Deployment).
	TxDeploy TxKind = 3
	// TxExec carries a verified execution record.
	TxExec TxKind = 4
)

func (k TxKind) valid() bool { return k >= TxData && k <= TxExec }

// MaxPayload is the payload limit of a transaction of kind k.
func (k TxKind) MaxPayload() int {
	if k == TxDeploy {
		return MaxDeployPayloadSize
	}
	return MaxPayloadSize
}

// String names the kind.
func (k TxKind) String() string {
	switch k {
	case TxData:
		return "data"
	case TxShard:
		return "shard"
	case TxDeploy:
		return "deploy"
	case TxExec:
		return "exec"
	default:
		return fmt.Sprintf("kind(%d)", uint8(k))
	}
}

// Tx is one transaction as it is stored in a block and hashed into the
// group's log. Its canonical encoding (Encode) is the Merkle leaf.
type Tx struct {
	Kind  TxKind
	Group uint32
	// Nonce makes two submissions of the same payload distinct transactions.
	// It is drawn by the node that accepts the submission, before proposing.
	Nonce [NonceSize]byte
	// IdempotencyKey is the client's de-duplication key ("" for none).
	IdempotencyKey string
	// Submitter is the caller's identity as the accepting node saw it
	// ("" until identities exist).
	Submitter string
	Payload   []byte
}

// Validate reports whether every field is within its limits.
func (t *Tx) Validate() error {
	switch {
	case !t.Kind.valid():
		return fmt.Errorf("%w: transaction kind %d", ErrInvalid, t.Kind)
	case len(t.Payload) > t.Kind.MaxPayload():
		return fmt.Errorf("%w: payload is %d bytes, limit %d", ErrTooLarge, len(t.Payload), t.Kind.MaxPayload())
	case len(t.IdempotencyKey) > MaxKeySize:
		return fmt.Errorf("%w: idempotency key is %d bytes, limit %d", ErrTooLarge, len(t.IdempotencyKey), MaxKeySize)
	case len(t.Submitter) > MaxSubmitterSize:
		return fmt.Errorf("%w: submitter is %d bytes, limit %d", ErrTooLarge, len(t.Submitter), MaxSubmitterSize)
	}
	return nil
}

// Encode returns the canonical encoding. It does not validate; call
// Validate first for values that did not come from DecodeTx.
//
//	version u8 | kind u8 | group u32 | nonce [16] |
//	key u16-len bytes | submitter u16-len bytes | payload u32-len bytes
func (t *Tx) Encode() []byte {
	e := wire.Encoder{B: make([]byte, 0, 32+len(t.IdempotencyKey)+len(t.Submitter)+len(t.Payload))}
	e.U8(TxVersion)
	e.U8(uint8(t.Kind))
	e.U32(t.Group)
	e.Raw(t.Nonce[:])
	e.Bytes16([]byte(t.IdempotencyKey))
	e.Bytes16([]byte(t.Submitter))
	e.Bytes32(t.Payload)
	return e.B
}

// DecodeTx parses a canonical encoding. It rejects unknown versions and
// kinds, oversize fields, truncated input and trailing bytes.
func DecodeTx(b []byte) (Tx, error) {
	d := newDecoder(b)
	var t Tx
	if v := d.U8("tx version"); d.Err() == nil && v != TxVersion {
		return Tx{}, fmt.Errorf("%w: tx version %d", ErrUnknownVersion, v)
	}
	t.Kind = TxKind(d.U8("tx kind"))
	if d.Err() == nil && !t.Kind.valid() {
		return Tx{}, fmt.Errorf("%w: transaction kind %d", ErrInvalid, t.Kind)
	}
	t.Group = d.U32("tx group")
	copy(t.Nonce[:], d.Take(NonceSize, "tx nonce"))
	t.IdempotencyKey = string(d.Bytes16("idempotency key", MaxKeySize))
	t.Submitter = string(d.Bytes16("submitter", MaxSubmitterSize))
	t.Payload = d.Bytes32("payload", t.Kind.MaxPayload())
	if err := d.Finish(); err != nil {
		return Tx{}, fmt.Errorf("chain: decode tx: %w", err)
	}
	if t.Payload == nil {
		t.Payload = []byte{}
	}
	return t, nil
}

// TxID is a transaction's identifier: SHA-256 of its canonical encoding.
// (The Merkle leaf hash is LeafHash of the same bytes; the two differ by
// RFC 6962's 0x00 leaf prefix.)
func TxID(encoded []byte) Hash { return sha256.Sum256(encoded) }
