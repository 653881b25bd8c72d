package fsm

import (
	"errors"
	"fmt"

	"qledger/chain"
	"qledger/execrecord"
)

// ErrInvalidRecord: an execution record (a TxExec payload) does not decode
// or fails execrecord.Check; nothing was appended for it.
var ErrInvalidRecord = errors.New("fsm: invalid execution record")

// checkTx is the validity a transaction must have, beyond decoding, to be
// appended: an execution record must decode and pass execrecord.Check —
// its election verifies, its roles follow from the election and its
// outcome from its executions. The check reads only the transaction, so
// every replica rejects the same records with the same error
// (ErrInvalidRecord), and a rejected record changes nothing but its own
// result.
func checkTx(t *chain.Tx) error {
	if t.Kind != chain.TxExec {
		return nil
	}
	rec, err := execrecord.Decode(t.Payload)
	if err == nil {
		err = execrecord.Check(rec)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	return nil
}
