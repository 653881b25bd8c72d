package api

import (
	"net/http"

	"qledger/api/client"
	"qledger/chain"
	"qledger/pki"
	"qledger/shard"
)

// withheld reports whether the caller may not see a transaction's bytes:
// a share segment of an access-controlled item whose reader list does not
// name the caller. Nodes see everything (they hold the chain anyway); on a
// cluster without a CA nothing is withheld, since callers are anonymous.
func (s *Server) withheld(r *http.Request, txBytes []byte) bool {
	id, ok := caller(r)
	if !ok || id.Role == pki.RoleNode {
		return false
	}
	rec, ok := shareRecord(txBytes)
	return ok && !rec.CanRead(id.Name)
}

// restricted reports whether a transaction is a share segment of an item
// with a reader list: some callers may not see its bytes.
func restricted(txBytes []byte) bool {
	rec, ok := shareRecord(txBytes)
	return ok && len(rec.Readers) > 0
}

// shareRecord decodes a transaction that is a share segment.
func shareRecord(txBytes []byte) (shard.Record, bool) {
	t, err := chain.DecodeTx(txBytes)
	if err != nil || t.Kind != chain.TxShard {
		return shard.Record{}, false
	}
	rec, err := shard.Decode(t.Payload)
	if err != nil {
		return shard.Record{}, false
	}
	return rec, true
}

// redactBlock withholds the share segments the caller may not read. A
// block with any withheld transaction loses its raw encoding and carries
// the raw header instead; each withheld transaction keeps its ID and leaf
// hash, so the block still verifies (chain.VerifyLeafChain).
func (s *Server) redactBlock(r *http.Request, b client.Block) client.Block {
	any := false
	for i := range b.Txs {
		if s.withheld(r, b.Txs[i].TxBytes) {
			b.Txs[i].TxBytes, b.Txs[i].Tx.Payload, b.Txs[i].Withheld = nil, nil, true
			any = true
		}
	}
	if any {
		b.HeaderRaw = append([]byte(nil), b.Raw[:chain.HeaderSize]...)
		b.Raw = nil
	}
	return b
}
