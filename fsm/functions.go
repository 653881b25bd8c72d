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
		w.onDeploy() // before the commit makes it visible
	}
	return w.tx.Bucket(bucketFunctions).Put([]byte(d.Spec.Name), b)
}

// FunctionMeta returns the latest deployment of name without its code:
// one read of the function index, for callers that have the code already
// (ErrNotFound if name was never deployed).
//
// Every invocation reads it on the leader and on each executor, so the
// decoded entries are kept in memory, under a version: the count of
// deployments begun in write transactions (Processor.OnDeploy, called
// inside the transaction, before its commit makes the deployment
// visible) and the store's file generation (Restore, rebuild). While a
// deployment is being written (begun, and its transaction not yet ended,
// see Store.update), the cache is bypassed; an entry is kept only if the
// version did not move while it was read. So a reader that can see a
// deployment (a head that includes it, say) never gets the entry it
// replaced.
func (s *Store) FunctionMeta(name string) (FunctionMeta, error) {
	begun, gen := s.deploys.Load(), s.gen.Load()
	settled := s.deploysEnded.Load() == begun
	at := [2]uint64{begun, gen}
	if settled {
		s.fnMu.Lock()
		m, ok := s.fnCache[name]
		ok = ok && s.fnAt == at
		s.fnMu.Unlock()
		if ok {
			return m, nil
		}
	}
	m, err := s.readFunctionMeta(name)
	if err != nil || !settled || s.deploys.Load() != begun || s.gen.Load() != gen {
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

// deployBegins is Processor.OnDeploy for the processors that write s: a
// write transaction is about to make a deployment visible.
func (s *Store) deployBegins() { s.deploys.Add(1) }

// deploysSettled records that every deployment begun up to count has
// committed or rolled back (Store.update, once its transaction ended).
func (s *Store) deploysSettled(count uint64) {
	for {
		cur := s.deploysEnded.Load()
		if cur >= count || s.deploysEnded.CompareAndSwap(cur, count) {
			return
		}
	}
}

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
