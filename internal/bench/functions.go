package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"time"

	"qledger/chain"
	"qledger/cluster"
	"qledger/election"
	"qledger/function"
	"qledger/server"
)

// deployPatience bounds one deployment's commit, retries included.
const deployPatience = 2 * time.Minute

// deploy commits d to groups 0..groups-1 through gw and compiles it on
// every node first: the first call of a Go module on a node costs about a
// second of compilation, which no run should measure.
func deploy(lc *server.Local, gw *cluster.Node, groups int, d function.Deployment) error {
	payload, err := d.MarshalBinary()
	if err != nil {
		return err
	}
	for g := 0; g < groups; g++ {
		if err := submitPatiently(gw, chain.Tx{Kind: chain.TxDeploy, Group: uint32(g), Payload: payload}); err != nil {
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

// submitPatiently commits t through gw, sending the same bytes again
// after a timeout or an unknown outcome until deployPatience passes: a
// Go module's deployment is megabytes, and on a loaded machine one
// attempt can outlast the 10 s RPC timeout. The nonce is drawn once, so
// a retry of a write that did commit is answered from the
// de-duplication table instead of committing it twice.
func submitPatiently(gw *cluster.Node, t chain.Tx) error {
	rand.Read(t.Nonce[:])
	ctx, cancel := context.WithTimeout(context.Background(), deployPatience)
	defer cancel()
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, 30*time.Second)
		_, err := gw.Submit(attempt, t)
		cancelAttempt()
		if err == nil || ctx.Err() != nil || !errors.Is(err, cluster.ErrTimeout) && !errors.Is(err, cluster.ErrUnknownOutcome) {
			return err
		}
	}
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
