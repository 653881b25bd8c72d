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
	if w.onDeploy != nil {
		w.tx.OnCommit(w.onDeploy)
	}
	return w.tx.Bucket(bucketFunctions).Put([]byte(d.Spec.Name), b)
}

// FunctionMeta returns the latest deployment of name without its code:
// one read of the function index, for callers that have the code already
// (ErrNotFound if name was never deployed).
//
// Every invocation reads it on the leader and on each executor, so the
// decoded entries are kept in memory: the cache is emptied whenever a
// deployment commits (Processor.OnDeploy, run after the commit) or
// Restore or a rebuild installs another file, and an entry read under
// one of those versions is never served under a later one.
func (s *Store) FunctionMeta(name string) (FunctionMeta, error) {
	at := [2]uint64{s.deploys.Load(), s.gen.Load()}
	s.fnMu.Lock()
	m, ok := s.fnCache[name]
	ok = ok && s.fnAt == at
	s.fnMu.Unlock()
	if ok {
		return m, nil
	}
	m, err := s.readFunctionMeta(name)
	if err != nil {
		return m, err
	}
	s.fnMu.Lock()
	if s.fnAt != at || s.fnCache == nil {
		s.fnAt, s.fnCache = at, map[string]FunctionMeta{}
	}
	s.fnCache[name] = m
	s.fnMu.Unlock()
	return m, nil
}

// deployed is Processor.OnDeploy for the processors that write s: a
// deployment committed, so the FunctionMeta cache is out of date.
func (s *Store) deployed() { s.deploys.Add(1) }

func (s *Store) readFunctionMeta(name string) (FunctionMeta, error) {
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
