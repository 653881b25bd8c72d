package chain

import (
	"errors"
	"fmt"
	"iter"
)

// VerifyError names the first height at which a chain fails verification
// and what is wrong there. Err is one of the chain verification errors
// (ErrHashLink, ErrTxRoot, ErrLogRoot, ErrHeightGap, ErrDecoding, ...).
type VerifyError struct {
	Height uint64
	Err    error
	Detail string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("chain: height %d: %v: %s", e.Height, e.Err, e.Detail)
}

func (e *VerifyError) Unwrap() error { return e.Err }

// VerifyReport summarizes a chain that verified.
type VerifyReport struct {
	Group  uint32
	Blocks uint64
	Txs    uint64
	// Head is the last block's header (zero if the chain is empty).
	Head Header
}

// VerifyChain checks a group's whole chain from height 1: every block
// decodes, heights follow each other with no gap (the key each block was
// stored under must equal its header height), every previous-hash link
// holds, every transaction root and every log size and root recomputes, and
// timestamps never go backwards. It stops at the first problem and returns
// a *VerifyError naming the height.
func VerifyChain(group uint32, blocks iter.Seq2[uint64, []byte]) (VerifyReport, error) {
	return VerifyLeafChain(group, func(yield func(uint64, LeafBlock) bool) {
		for key, raw := range blocks {
			b, err := DecodeBlock(raw)
			lb := LeafBlock{Header: b.Header, Err: err}
			if err == nil {
				lb.Leaves = b.LeafHashes()
			}
			if !yield(key, lb) {
				return
			}
		}
	})
}

// LeafBlock is a block as a verifier may see it when some transactions
// are withheld from it: the header and the Merkle leaf hash of every
// transaction. Err is a decoding failure to report at this height.
type LeafBlock struct {
	Header Header
	Leaves []Hash
	Err    error
}

// VerifyLeafChain is VerifyChain over headers and leaf hashes: every check
// but the decoding of withheld transactions' bytes. The roots commit to
// the leaves, so a chain that verifies here verifies in full for whoever
// holds the transactions.
func VerifyLeafChain(group uint32, blocks iter.Seq2[uint64, LeafBlock]) (VerifyReport, error) {
	rep := VerifyReport{Group: group}
	var (
		log  Frontier
		prev *Header
	)
	for key, b := range blocks {
		want := uint64(1)
		if prev != nil {
			want = prev.Height + 1
		}
		if key != want {
			return rep, &VerifyError{Height: want, Err: ErrHeightGap, Detail: fmt.Sprintf("expected height %d, found height %d", want, key)}
		}
		if b.Err != nil {
			return rep, &VerifyError{Height: key, Err: ErrDecoding, Detail: b.Err.Error()}
		}
		if uint32(len(b.Leaves)) != b.Header.TxCount {
			return rep, &VerifyError{Height: key, Err: ErrDecoding, Detail: fmt.Sprintf("%d leaves, header counts %d transactions", len(b.Leaves), b.Header.TxCount)}
		}
		if err := checkBlock(group, key, prev, &b.Header, b.Leaves, &log); err != nil {
			return rep, err
		}
		rep.Blocks++
		rep.Txs += uint64(len(b.Leaves))
		rep.Head = b.Header
		prev = &rep.Head
	}
	return rep, nil
}

func checkBlock(group uint32, height uint64, prev *Header, h *Header, leaves []Hash, log *Frontier) error {
	fail := func(err error, format string, args ...any) error {
		return &VerifyError{Height: height, Err: err, Detail: fmt.Sprintf(format, args...)}
	}
	if h.Group != group {
		return fail(ErrWrongGroup, "header says group %d, chain is group %d", h.Group, group)
	}
	if h.Height != height {
		return fail(ErrHeightGap, "stored at height %d, header says %d", height, h.Height)
	}
	var wantPrev Hash
	if prev != nil {
		wantPrev = prev.Hash()
		if h.Timestamp < prev.Timestamp {
			return fail(ErrTimestamp, "timestamp %d before previous %d", h.Timestamp, prev.Timestamp)
		}
	}
	if h.PrevHash != wantPrev {
		return fail(ErrHashLink, "previous hash %s, previous header hashes to %s", h.PrevHash, wantPrev)
	}
	if root := RootFromLeaves(leaves); root != h.TxRoot {
		return fail(ErrTxRoot, "header says %s, transactions hash to %s", h.TxRoot, root)
	}
	for _, l := range leaves {
		log.Append(l, nil)
	}
	if log.Size() != h.LogSize || log.Root() != h.LogRoot {
		return fail(ErrLogRoot, "header says size %d root %s, log recomputes to size %d root %s", h.LogSize, h.LogRoot, log.Size(), log.Root())
	}
	return nil
}

// IsVerifyError reports whether err is a *VerifyError and returns it.
func IsVerifyError(err error) (*VerifyError, bool) {
	var ve *VerifyError
	ok := errors.As(err, &ve)
	return ve, ok
}
