package fsm

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"qledger/chain"
)

// ErrAlreadyApplied marks an entry at or below the stored applied index; it
// was skipped and changed nothing.
var ErrAlreadyApplied = errors.New("fsm: entry already applied")

// TxResult is the outcome for one transaction of a command.
type TxResult struct {
	ID       chain.Hash
	Location TxLocation
	// Duplicate is set when the transaction was not appended because its
	// idempotency key (or its exact bytes) had been committed before;
	// ID and Location are then the original's.
	Duplicate bool
	// Err is ErrIdempotencyConflict when the key was used before for a
	// different request; nothing was appended for this transaction.
	Err error
}

// ApplyResult is what applying one log entry produced. It is the value an
// ApplyFuture's Response() returns on the node that proposed the entry.
type ApplyResult struct {
	Index uint64
	// Block is the appended block's header, nil if none was appended.
	Block *chain.Header
	// Txs has one result per transaction of the command, in order.
	Txs []TxResult
	// Err is set when the whole entry was rejected (malformed command,
	// wrong group, already applied); nothing but the applied index changed.
	Err error
}

// Entry is one committed raft log entry as the Processor sees it.
type Entry struct {
	Index uint64
	// Command is false for entries that carry no command (configuration
	// changes); they only advance the applied index.
	Command bool
	Data    []byte
}

// Processor applies entries of one group's log to a store transaction. It
// holds no state of its own beyond the group number, so a recovery or
// audit tool can replay a raft log into a store with it.
type Processor struct {
	Group uint32
	// OnDeploy, if set, is called inside the transaction for every
	// deployment it indexes, before the commit makes it visible
	// (Store.deployBegins for a store written through Store.update).
	OnDeploy func()
}

// Apply applies entries, in order, inside tx. It returns one result per
// entry and an error in two cases:
//
//   - the store itself failed (a corrupt or unwritable file): the results
//     are nil, and the caller must roll tx back and stop, since this
//     replica can no longer follow the log;
//   - an entry was written by a newer version (the error wraps
//     ErrNewerVersion): the entries before it are applied in tx, which the
//     caller commits; that entry and every later one carry the error and
//     changed nothing, and the caller must stop applying, so that every
//     replica of this version stops at the same index instead of skipping
//     an entry newer replicas apply.
func (p Processor) Apply(tx *bolt.Tx, entries []Entry) ([]*ApplyResult, error) {
	st, err := readState(tx)
	if err != nil {
		return nil, err
	}
	w := writer{tx: tx, st: &st, group: p.Group, txs: newTxIndex(tx), tiles: newTileWriter(tx), onDeploy: p.OnDeploy}
	size := st.log.Size()
	out := make([]*ApplyResult, len(entries))
	var stop error
	for i, e := range entries {
		res := &ApplyResult{Index: e.Index}
		out[i] = res
		if stop != nil {
			res.Err = stop
			continue
		}
		if e.Index <= st.applied {
			res.Err = fmt.Errorf("%w: index %d, applied %d", ErrAlreadyApplied, e.Index, st.applied)
			continue
		}
		if e.Command {
			err := w.appendBlock(res, e.Data)
			if errors.Is(err, ErrNewerVersion) {
				stop = fmt.Errorf("fsm: apply %d: %w", e.Index, err)
				res.Err = stop
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("fsm: apply %d: %w", e.Index, err)
			}
		}
		st.applied = e.Index
	}
	if err := w.tiles.flush(); err != nil {
		return nil, err
	}
	if err := w.txs.seal(size, st.log.Size()); err != nil {
		return nil, err
	}
	if err := w.saveState(); err != nil {
		return nil, err
	}
	return out, stop
}

// appendFill is the page fill factor for append-only buckets.
const appendFill = 0.95

type writer struct {
	tx    *bolt.Tx
	st    *state
	group uint32
	txs   txIndex
	tiles *tileWriter
	// onDeploy is Processor.OnDeploy.
	onDeploy func()
}

// requestHash is what an idempotency key is bound to: the request, not the
// nonce the accepting node drew for it.
func requestHash(t *chain.Tx) []byte {
	h := sha256.New()
	var hdr [5]byte
	hdr[0] = byte(t.Kind)
	binary.BigEndian.PutUint32(hdr[1:], t.Group)
	h.Write(hdr[:])
	h.Write(t.Payload)
	return h.Sum(nil)
}

// DedupKey scopes an idempotency key to the identity that submitted it.
func DedupKey(submitter, key string) []byte {
	return append(append([]byte(submitter), 0), key...)
}

// dedup record: request hash (32) | tx ID (32) | location (20)
func encodeDedup(req []byte, id chain.Hash, loc TxLocation) []byte {
	b := append(append([]byte(nil), req...), id[:]...)
	return append(b, loc.encode()...)
}

func decodeDedup(b []byte) (req []byte, id chain.Hash, loc TxLocation, err error) {
	if len(b) != 32+32+20 {
		return nil, id, loc, fmt.Errorf("fsm: corrupt dedup record (%d bytes)", len(b))
	}
	copy(id[:], b[32:64])
	loc, err = decodeLocation(b[64:])
	return b[:32], id, loc, err
}

// appendBlock applies one CmdAppendBlock. A command that is malformed or
// for another group sets res.Err; only storage failures and a command of
// a newer version (ErrNewerVersion, before anything is written) return
// an error.
func (w *writer) appendBlock(res *ApplyResult, data []byte) error {
	cmd, err := DecodeCommand(data)
	if errors.Is(err, ErrNewerVersion) {
		return err
	}
	if err != nil {
		res.Err = err
		return nil
	}
	txs := make([]chain.Tx, len(cmd.Txs))
	for i, raw := range cmd.Txs {
		txs[i], _ = chain.DecodeTx(raw) // validated by DecodeCommand
		if txs[i].Group != w.group {
			res.Err = fmt.Errorf("%w: transaction %d is for group %d, this is group %d", ErrBadCommand, i, txs[i].Group, w.group)
			return nil
		}
	}
	dedup := w.tx.Bucket(bucketDedup)
	type pending struct {
		req []byte
		id  chain.Hash
		pos int
	}
	var (
		fresh   [][]byte
		freshAt = map[string]int{} // dedup key -> index into res.Txs, within this command
		seenID  = map[chain.Hash]int{}
		newKeys []pending
	)
	base := w.st.log.Size()
	res.Txs = make([]TxResult, len(txs))
	for i := range txs {
		t := &txs[i]
		id := chain.TxID(cmd.Txs[i])
		r := &res.Txs[i]
		r.ID = id
		if loc, _, ok, err := w.txs.get(id); err != nil {
			return err
		} else if ok {
			r.Location, r.Duplicate = loc, true
			continue
		}
		if j, ok := seenID[id]; ok {
			*r = res.Txs[j]
			r.Duplicate = true
			continue
		}
		if err := w.checkTx(t); err != nil {
			r.Err = err
			continue
		}
		var req []byte
		if t.IdempotencyKey != "" {
			req = requestHash(t)
			key := DedupKey(t.Submitter, t.IdempotencyKey)
			if v := dedup.Get(key); v != nil {
				oreq, oid, oloc, err := decodeDedup(v)
				if err != nil {
					return err
				}
				if string(oreq) != string(req) {
					r.Err = ErrIdempotencyConflict
				} else {
					r.ID, r.Location, r.Duplicate = oid, oloc, true
				}
				continue
			}
			if j, ok := freshAt[string(key)]; ok {
				if string(newKeys[res.Txs[j].Location.Pos].req) != string(req) {
					r.Err = ErrIdempotencyConflict
				} else {
					*r = res.Txs[j]
					r.Duplicate = true
				}
				continue
			}
			freshAt[string(key)] = i
		}
		pos := len(fresh)
		r.Location = TxLocation{Index: base + uint64(pos), Pos: uint32(pos)}
		seenID[id] = i
		newKeys = append(newKeys, pending{req: req, id: id, pos: i})
		fresh = append(fresh, cmd.Txs[i])
	}
	if len(fresh) == 0 {
		return nil
	}
	// Keys of the blocks bucket only grow: fill pages before splitting
	// them.
	w.tx.Bucket(bucketBlocks).FillPercent = appendFill
	blk, err := chain.NextBlock(w.st.head, w.group, cmd.Timestamp, fresh, &w.st.log, w.tiles.emit)
	if err != nil {
		return err // the log and the head disagree: the store is corrupt
	}
	if w.tiles.err != nil {
		return w.tiles.err
	}
	height := blk.Header.Height
	for i := range res.Txs {
		r := &res.Txs[i]
		if r.Err == nil && !r.Duplicate {
			r.Location.Height = height
		}
	}
	// Duplicates inside this command copied a location before the height
	// was known; fill it in from the original.
	for i := range res.Txs {
		r := &res.Txs[i]
		if r.Duplicate && r.Location.Height == 0 {
			r.Location.Height = height
		}
	}
	for _, p := range newKeys {
		r := res.Txs[p.pos]
		if err := w.txs.put(p.id, r.Location.Index, height, r.Location.Pos); err != nil {
			return err
		}
		switch txs[p.pos].Kind {
		case chain.TxShard:
			if err := w.indexShard(&txs[p.pos], p.id, height); err != nil {
				return err
			}
		case chain.TxDeploy:
			if err := w.indexDeploy(&txs[p.pos], p.id, height); err != nil {
				return err
			}
		}
		if p.req != nil {
			if err := dedup.Put(DedupKey(txs[p.pos].Submitter, txs[p.pos].IdempotencyKey), encodeDedup(p.req, p.id, r.Location)); err != nil {
				return err
			}
		}
	}
	if err := w.tx.Bucket(bucketBlocks).Put(heightKey(height), blk.Encode()); err != nil {
		return err
	}
	w.st.head = &blk.Header
	res.Block = &blk.Header
	return nil
}

func (w *writer) saveState() error {
	meta := w.tx.Bucket(bucketMeta)
	if err := meta.Put(keyApplied, binary.BigEndian.AppendUint64(nil, w.st.applied)); err != nil {
		return err
	}
	if w.st.head != nil {
		if err := meta.Put(keyHead, w.st.head.Encode()); err != nil {
			return err
		}
	}
	f, err := w.st.log.MarshalBinary()
	if err != nil {
		return err
	}
	return meta.Put(keyFrontier, f)
}

// LookupKey finds the transaction committed under (submitter, key),
// whatever its request was; ok=false if the key is unused.
func (s *Store) LookupKey(submitter, key string) (id chain.Hash, loc TxLocation, ok bool, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketDedup).Get(DedupKey(submitter, key))
		if v == nil {
			return nil
		}
		_, id, loc, err = decodeDedup(v)
		ok = err == nil
		return err
	})
	return id, loc, ok, err
}

// Lookup answers an idempotency key from the committed table: ok=false if
// the key is unused; ErrIdempotencyConflict if it was used for a different
// request than t.
func (s *Store) Lookup(t *chain.Tx) (id chain.Hash, loc TxLocation, ok bool, err error) {
	if t.IdempotencyKey == "" {
		return id, loc, false, nil
	}
	err = s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketDedup).Get(DedupKey(t.Submitter, t.IdempotencyKey))
		if v == nil {
			return nil
		}
		var req []byte
		req, id, loc, err = decodeDedup(v)
		if err != nil {
			return err
		}
		if string(req) != string(requestHash(t)) {
			return ErrIdempotencyConflict
		}
		ok = true
		return nil
	})
	return id, loc, ok, err
}
