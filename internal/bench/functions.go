package bench

import (
	"context"
	"crypto/rand"

	"qledger/chain"
	"qledger/cluster"
	"qledger/election"
	"qledger/function"
	"qledger/server"
)

// deploy commits d to groups 0..groups-1 through gw and compiles it on
// every node first: the first call of a Go module on a node costs about a
// second of compilation, which no run should measure.
func deploy(lc *server.Local, gw *cluster.Node, groups int, d function.Deployment) error {
	payload, err := d.MarshalBinary()
	if err != nil {
		return err
	}
	for g := 0; g < groups; g++ {
		if _, err := gw.Submit(context.Background(), chain.Tx{Kind: chain.TxDeploy, Group: uint32(g), Payload: payload}); err != nil {
			return err
		}
	}
	for _, n := range lc.Nodes {
		if err := n.CheckDeployment(context.Background(), d); err != nil {
			return err
		}
	}
	return nil
}

// invokeOp is a drive operation that invokes "increment" through gw on
// group c mod groups, each call with a fresh request ID and an election
// key derived from one random session key, as a gateway would.
func invokeOp(gw *cluster.Node, groups int) func(c, i int) error {
	session := make([]byte, 32)
	rand.Read(session)
	return func(c, i int) error {
		var req cluster.InvokeRequest
		rand.Read(req.RequestID[:])
		key, err := election.DeriveKey(session, req.RequestID[:])
		if err != nil {
			return err
		}
		req.Group, req.Function, req.Input, req.ElectionKey, req.KeyID = c%groups, "increment", []byte(`{"value":100}`), key, "bench"
		_, err = gw.Invoke(context.Background(), req)
		return err
	}
}
