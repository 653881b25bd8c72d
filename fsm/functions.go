package fsm

import (
	"encoding/json"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"

	"qledger/chain"
	"qledger/function"
)

// bucketFunctions maps a function name to its latest deployment.
var bucketFunctions = []byte("functions")

// FunctionMeta is a deployed function as this group knows it: the latest
// valid deploy transaction committed under its name.
type FunctionMeta struct {
	Spec   function.Spec `json:"spec"`
	TxID   chain.Hash    `json:"tx_id"`
	Height uint64        `json:"height"`
}

// indexDeploy records a committed deploy transaction whose deployment
// decodes and validates (identically on every replica); later deploys
// under the same name replace earlier ones.
func (w *writer) indexDeploy(t *chain.Tx, id chain.Hash, height uint64) error {
	var d function.Deployment
	if d.UnmarshalBinary(t.Payload) != nil || d.Validate() != nil {
		return nil
	}
	b, err := json.Marshal(FunctionMeta{Spec: d.Spec, TxID: id, Height: height})
	if err != nil {
		return err
	}
	return w.tx.Bucket(bucketFunctions).Put([]byte(d.Spec.Name), b)
}

// FunctionMeta returns the latest deployment of name without its code:
// one read of the function index, for callers that have the code already
// (ErrNotFound if name was never deployed).
func (s *Store) FunctionMeta(name string) (FunctionMeta, error) {
	var m FunctionMeta
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketFunctions).Get([]byte(name))
		if v == nil {
			return fmt.Errorf("%w: function %q", ErrNotFound, name)
		}
		return json.Unmarshal(v, &m)
	})
	return m, err
}

// Function returns the latest deployment of name, with its code.
func (s *Store) Function(name string) (FunctionMeta, []byte, error) {
	m, err := s.FunctionMeta(name)
	if err != nil {
		return m, nil, err
	}
	rec, err := s.Tx(m.TxID)
	if err != nil {
		return m, nil, err
	}
	t, err := chain.DecodeTx(rec.TxBytes)
	if err != nil {
		return m, nil, err
	}
	var d function.Deployment
	if err := d.UnmarshalBinary(t.Payload); err != nil {
		return m, nil, fmt.Errorf("fsm: deployment of %q: %w", name, err)
	}
	return m, d.Code, nil
}

// Functions lists deployed functions by name.
func (s *Store) Functions() ([]FunctionMeta, error) {
	var out []FunctionMeta
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFunctions).ForEach(func(k, v []byte) error {
			var m FunctionMeta
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			out = append(out, m)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Spec.Name < out[j].Spec.Name })
	return out, err
}
