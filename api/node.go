package api

import (
	"context"

	"qledger/chain"
	"qledger/cluster"
	"qledger/fsm"
	"qledger/function"
)

// What the API needs from a node, one interface per group of endpoints,
// each sized to what those endpoints call. *cluster.Node implements all
// of them. Every method may be called concurrently and must honour ctx.

// Ledger is what the transaction and chain endpoints need: writes, and
// reads of each group's chain at a read level.
type Ledger interface {
	// Groups is the number of node groups, fixed for the cluster's life.
	Groups() int
	Submit(ctx context.Context, t chain.Tx) (cluster.Receipt, error)
	Tx(ctx context.Context, id chain.Hash, group int, level cluster.Level) (fsm.TxRecord, int, error)
	Head(ctx context.Context, group int, level cluster.Level) (chain.Header, bool, error)
	SignedHead(ctx context.Context, group int, level cluster.Level) (cluster.SignedHead, error)
	Block(ctx context.Context, group int, height uint64, level cluster.Level) ([]byte, error)
	Blocks(ctx context.Context, group int, from uint64, limit int, level cluster.Level) ([][]byte, error)
	Consistency(ctx context.Context, group int, from, to uint64, level cluster.Level) (cluster.ConsistencyProof, error)
	LogNodes(ctx context.Context, group int, level uint8, from uint64, count int, lv cluster.Level) ([]chain.Hash, error)
}

// Membership is what the cluster endpoints need: status, readiness, and
// explicit joins and removals.
type Membership interface {
	Status(ctx context.Context) cluster.ClusterStatus
	Ready(ctx context.Context) (bool, cluster.ClusterStatus)
	Join(ctx context.Context, node cluster.NodeInfo) (cluster.JoinResponse, error)
	Remove(ctx context.Context, id string) error
	// Scrub verifies, and Repair rebuilds, the chain store of a group's
	// replicas (one, or all); each reports per replica.
	Scrub(ctx context.Context, req cluster.ScrubRequest) ([]cluster.ScrubReport, error)
	Repair(ctx context.Context, req cluster.ScrubRequest) ([]cluster.ScrubReport, error)
}

// DataIndex is what the data-sharing endpoints read besides the ledger:
// the shared items of a group and the share records of one.
type DataIndex interface {
	Items(ctx context.Context, group int, filter string, level cluster.Level) ([]fsm.ItemMeta, error)
	ItemPage(ctx context.Context, group int, dataID string, from, limit int, level cluster.Level) (fsm.ItemMeta, []fsm.TxRecord, error)
}

// FunctionHost is what the function endpoints need besides the ledger:
// checking a deployment, the deployed functions, running an invocation
// and finding its record again.
type FunctionHost interface {
	CheckDeployment(ctx context.Context, d function.Deployment) error
	Functions(ctx context.Context) ([]fsm.FunctionMeta, error)
	Invoke(ctx context.Context, req cluster.InvokeRequest) (cluster.InvokeResult, error)
	Invocation(ctx context.Context, caller string, requestID [32]byte) (cluster.InvokeResult, error)
}

// *cluster.Node is the node every API server runs on.
var _ Cluster = (*cluster.Node)(nil)

// Cluster is a whole node as New takes it.
type Cluster interface {
	Ledger
	Membership
	DataIndex
	FunctionHost
}
