package fsm

import (
	"encoding/json"
	"errors"
	"fmt"

	"qledger/chain"
	"qledger/execrecord"
	"qledger/function"
)

// ErrInvalidRecord: an execution record (a TxExec payload) does not decode
// or fails execrecord.Check, or accepts a result without a verifier for a
// function whose policy refuses that; nothing was appended for it.
var ErrInvalidRecord = errors.New("fsm: invalid execution record")

// ErrUnverifiedRefused: the record accepts a result no second execution
// verified, and the function's policy (function.UnverifiedRefuse) refuses
// such results.
var ErrUnverifiedRefused = errors.New("fsm: the function refuses unverified results")

// checkTx is the validity a transaction must have, beyond decoding, to be
// appended: an execution record must decode and pass execrecord.Check —
// its election verifies, its roles follow from the election and its
// outcome from its executions — and may accept an unverified result
// (agreed, not verified) only for a function whose policy, as this store
// holds it, accepts that. The check reads only the transaction and the
// store, so every replica rejects the same records with the same error
// (ErrInvalidRecord), and a rejected record changes nothing but its own
// result.
func (w *writer) checkTx(t *chain.Tx) error {
	if t.Kind != chain.TxExec {
		return nil
	}
	rec, err := execrecord.Decode(t.Payload)
	if err == nil {
		err = execrecord.Check(rec)
	}
	if err == nil && rec.Agreed && !rec.Verified && w.refusesUnverified(rec.Function) {
		err = fmt.Errorf("%w: %s", ErrUnverifiedRefused, rec.Function)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	return nil
}

// refusesUnverified reports whether the latest deployment of name in this
// store refuses unverified results (an unknown function: no).
func (w *writer) refusesUnverified(name string) bool {
	v := w.tx.Bucket(bucketFunctions).Get([]byte(name))
	if v == nil {
		return false
	}
	var m FunctionMeta
	return json.Unmarshal(v, &m) == nil && m.Spec.Unverified == function.UnverifiedRefuse
}
