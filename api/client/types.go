package client

import (
	"errors"
	"fmt"
	"time"

	"qledger/chain"
	"qledger/qkd/kme"
)

// Wire types of the HTTP API. Field names are a contract: auditors and
// outside tools read them.

// SubmitRequest is the body of POST /v1/tx.
type SubmitRequest struct {
	// Payload is the transaction payload (base64 in JSON).
	Payload []byte `json:"payload"`
	// Group, if set, names the group to write to; otherwise the server
	// picks one (by idempotency key when there is one).
	Group *int `json:"group,omitempty"`
}

// Receipt answers POST /v1/tx once the transaction has committed.
type Receipt struct {
	ID     string `json:"id"`
	Group  int    `json:"group"`
	Height uint64 `json:"height"`
	// Index is the transaction's leaf index in the group's whole log.
	Index uint64 `json:"index"`
}

// Proof is an RFC 9162 inclusion proof in a group's whole transaction log.
type Proof struct {
	LeafIndex uint64   `json:"leaf_index"`
	TreeSize  uint64   `json:"tree_size"`
	Root      string   `json:"root"`
	Hashes    []string `json:"hashes"`
}

// TxFields is a transaction decoded for people.
type TxFields struct {
	Kind           string `json:"kind"`
	Group          uint32 `json:"group"`
	Nonce          string `json:"nonce"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	Submitter      string `json:"submitter,omitempty"`
	Payload        []byte `json:"payload"`
}

// TxResponse answers GET /v1/tx/{id}.
type TxResponse struct {
	ID     string `json:"id"`
	Group  int    `json:"group"`
	Height uint64 `json:"height"`
	Index  uint64 `json:"index"`
	// TxBytes is the canonical encoding: the Merkle leaf.
	TxBytes  []byte   `json:"tx_bytes"`
	LeafHash string   `json:"leaf_hash"`
	Proof    Proof    `json:"proof"`
	Tx       TxFields `json:"tx"`
	// Withheld: a share segment the caller may not read; TxBytes and the
	// payload are left out, the inclusion of the leaf hash still verifies.
	Withheld bool `json:"withheld,omitempty"`
}

// Head is a block header.
type Head struct {
	Version   uint8  `json:"version"`
	Group     uint32 `json:"group"`
	Height    uint64 `json:"height"`
	Hash      string `json:"hash"`
	PrevHash  string `json:"prev_hash"`
	Timestamp int64  `json:"timestamp"` // Unix nanoseconds
	TxRoot    string `json:"tx_root"`
	TxCount   uint32 `json:"tx_count"`
	LogSize   uint64 `json:"log_size"`
	LogRoot   string `json:"log_root"`
	// On a cluster with TLS: the signature of the node that served the
	// head (the group leader) over chain.HeadStatement, its node ID and
	// its certificate chain (DER, leaf first). VerifyHeadSignature checks
	// them.
	Signature []byte   `json:"signature,omitempty"`
	Signer    string   `json:"signer,omitempty"`
	CertChain [][]byte `json:"cert_chain,omitempty"`
	// SignedAt is when the signer signed, Unix nanoseconds (its clock).
	SignedAt int64 `json:"signed_at,omitempty"`
}

// BlockTx is one transaction inside a block.
type BlockTx struct {
	ID       string   `json:"id"`
	LeafHash string   `json:"leaf_hash"`
	TxBytes  []byte   `json:"tx_bytes"`
	Tx       TxFields `json:"tx"`
	// Withheld: the caller may not read this transaction (a share of an
	// item whose reader list does not name it); TxBytes and the payload
	// are left out, the ID and leaf hash stay.
	Withheld bool `json:"withheld,omitempty"`
}

// Block answers GET /v1/groups/{g}/blocks/{height}.
type Block struct {
	Head
	Txs []BlockTx `json:"txs"`
	// Raw is the canonical block encoding, for offline verification.
	// It is left out when a transaction is withheld; HeaderRaw, the
	// canonical header, is given instead.
	Raw       []byte `json:"raw,omitempty"`
	HeaderRaw []byte `json:"header_raw,omitempty"`
}

// LeafBlock turns a block as served into what chain.VerifyLeafChain
// checks: the header and each transaction's leaf hash, recomputed from
// the bytes wherever they are given.
func (b Block) LeafBlock() chain.LeafBlock {
	if len(b.Raw) > 0 {
		blk, err := chain.DecodeBlock(b.Raw)
		if err != nil {
			return chain.LeafBlock{Err: err}
		}
		return chain.LeafBlock{Header: blk.Header, Leaves: blk.LeafHashes()}
	}
	h, err := chain.DecodeHeader(b.HeaderRaw)
	if err != nil {
		return chain.LeafBlock{Err: err}
	}
	out := chain.LeafBlock{Header: h, Leaves: make([]chain.Hash, len(b.Txs))}
	for i, tx := range b.Txs {
		if !tx.Withheld {
			if _, err := chain.DecodeTx(tx.TxBytes); err != nil {
				return chain.LeafBlock{Header: h, Err: fmt.Errorf("transaction %d: %w", i, err)}
			}
			out.Leaves[i] = chain.LeafHash(tx.TxBytes)
			continue
		}
		if out.Leaves[i], err = chain.ParseHash(tx.LeafHash); err != nil {
			return chain.LeafBlock{Header: h, Err: fmt.Errorf("transaction %d: leaf hash: %w", i, err)}
		}
	}
	return out
}

// BlockList answers GET /v1/groups/{g}/blocks.
type BlockList struct {
	Blocks []Block `json:"blocks"`
}

// ConsistencyResponse answers GET /v1/groups/{g}/proof/consistency.
type ConsistencyResponse struct {
	From     uint64   `json:"from"`
	To       uint64   `json:"to"`
	RootFrom string   `json:"root_from"`
	RootTo   string   `json:"root_to"`
	Hashes   []string `json:"hashes"`
}

// Member is one node of a group: a raft server, or a node gossip shows
// that is not (yet) in the configuration (suffrage "none").
type Member struct {
	ID       string `json:"id"`
	Group    int    `json:"group"`
	Addr     string `json:"addr"`
	APIAddr  string `json:"api_addr,omitempty"`
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
	Role     string `json:"role,omitempty"`
	Gossip   string `json:"gossip"`
	Healthy  bool   `json:"healthy"`
	Reason   string `json:"reason,omitempty"`
	Stable   bool   `json:"stable,omitempty"`
	// Version is the build the member runs, as it advertises in gossip.
	Version string `json:"version,omitempty"`
	// Protocol is the newest internal protocol version the member speaks.
	Protocol int `json:"protocol,omitempty"`
	// RaftLag is how many log entries the member trails the leader by;
	// only a group's leader reports it.
	RaftLag *uint64 `json:"raft_lag,omitempty"`
	// ChainAlarm, when set, says the member found its chain store
	// damaged: the first bad height and what is wrong.
	ChainAlarm string `json:"chain_alarm,omitempty"`
}

// ChainAlarm is damage found in one replica's chain store: while raised,
// the replica serves none of its group's reads and refuses leadership.
type ChainAlarm struct {
	Node   string `json:"node"`
	Group  int    `json:"group"`
	Height uint64 `json:"height"`
	What   string `json:"what"`
	// Source: start, scrub, compare or gossip (another node's alarm as
	// gossip carries it).
	Source string `json:"source"`
	Found  string `json:"found,omitempty"`
}

// GroupStatus is one group in GET /v1/cluster.
type GroupStatus struct {
	Group     int      `json:"group"`
	Leader    string   `json:"leader,omitempty"`
	HasLeader bool     `json:"has_leader"`
	Reporter  string   `json:"reporter"`
	State     string   `json:"state"`
	Term      uint64   `json:"term"`
	Commit    uint64   `json:"commit_index"`
	Applied   uint64   `json:"applied_index"`
	LastLog   uint64   `json:"last_log_index"`
	Height    uint64   `json:"height"`
	LogSize   uint64   `json:"log_size"`
	Members   []Member `json:"members"`
	Error     string   `json:"error,omitempty"`
	// Voters, NonVoters, HealthyVoters and FailureTolerance (how many more
	// voters may fail before quorum is lost; negative: lost).
	Voters           int `json:"voters"`
	NonVoters        int `json:"nonvoters"`
	HealthyVoters    int `json:"healthy_voters"`
	FailureTolerance int `json:"failure_tolerance"`
	QueueDepth       int `json:"queue_depth"`
	// ChainAlarms lists the group's replicas whose chain store is found
	// damaged.
	ChainAlarms []ChainAlarm `json:"chain_alarms,omitempty"`
	// Autoscale is the group leader's last executor autoscaling decision,
	// if it runs the autoscaler.
	Autoscale *ScaleDecision `json:"autoscale,omitempty"`
}

// ScaleDecision is one decision of a group's executor autoscaler.
type ScaleDecision struct {
	At time.Time `json:"at"`
	// Executors is the count after the decision was acted on; Wanted
	// what demand alone asks for; Desired what the safeguards allow now.
	Executors int `json:"executors"`
	Wanted    int `json:"wanted"`
	Desired   int `json:"desired"`
	InFlight  int `json:"in_flight"`
	// ExecutorCPU is the executors' mean CPU use (share of their
	// machines' CPUs) at the decision, with a CPU target.
	ExecutorCPU float64 `json:"executor_cpu,omitempty"`
	Reason      string  `json:"reason"`
	Error       string  `json:"error,omitempty"`
}

// NodeInfo describes a node.
type NodeInfo struct {
	ID      string `json:"id"`
	Group   int    `json:"group"`
	Addr    string `json:"addr"`
	APIAddr string `json:"api_addr,omitempty"`
}

// ClusterStatus answers GET /v1/cluster.
type ClusterStatus struct {
	Node   NodeInfo      `json:"node"`
	Groups []GroupStatus `json:"groups"`
	// ChainAlarm is the answering node's own alarm, if raised.
	ChainAlarm *ChainAlarm `json:"chain_alarm,omitempty"`
}

// JoinRequest is the body of POST /v1/cluster/join.
type JoinRequest struct {
	ID      string `json:"id"`
	Addr    string `json:"addr"`
	APIAddr string `json:"api_addr,omitempty"`
}

// ScaleRequest is the body and the answer of POST /v1/cluster/scale.
type ScaleRequest struct {
	Executors int `json:"executors"`
}

// ScrubRequest is the body of POST /v1/cluster/scrub and
// /v1/cluster/repair: the group, and one node of it (an ID or an ID
// prefix of at least 8 digits) or empty for every replica.
type ScrubRequest struct {
	Group int    `json:"group"`
	Node  string `json:"node,omitempty"`
}

// ScrubReport is one replica's answer to a scrub or repair: the blocks
// and transactions its chain store holds after it, how long it took, the
// alarm if it is (still) damaged, or an error (a replica that did not
// finish in time goes on; status shows the outcome).
type ScrubReport struct {
	Node    string      `json:"node"`
	Group   int         `json:"group"`
	Blocks  uint64      `json:"blocks"`
	Txs     uint64      `json:"txs"`
	Seconds float64     `json:"seconds"`
	Alarm   *ChainAlarm `json:"alarm,omitempty"`
	Error   string      `json:"error,omitempty"`
}

// ScrubResponse answers a scrub or repair.
type ScrubResponse struct {
	Reports []ScrubReport `json:"reports"`
}

// TransferLeaderRequest is the body of POST
// /v1/groups/{g}/leader/transfer: the voter to hand leadership to, or
// empty for any.
type TransferLeaderRequest struct {
	To string `json:"to,omitempty"`
}

// TransferLeaderResult is its answer: the group's leader afterwards.
type TransferLeaderResult struct {
	Group  int    `json:"group"`
	Leader string `json:"leader"`
}

// LeaveResult is the answer of POST /v1/node/leave.
type LeaveResult struct {
	Left bool `json:"left"`
}

// ErrorBody is every error response.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	// Result is set only with CodeNoAgreement: the invocation's execution
	// record, committed to the chain although its executions disagreed.
	Result *InvokeResponse `json:"result,omitempty"`
}

// Error codes in ErrorBody.Code.
const (
	CodeBadRequest     = "bad_request"
	CodeNotFound       = "not_found"
	CodeTooLarge       = "too_large"
	CodeConflict       = "idempotency_conflict"
	CodeNoLeader       = "no_leader"
	CodeTimeout        = "timeout"
	CodeUnknownOutcome = "unknown_outcome"
	CodeUnavailable    = "unavailable"
	CodeInternal       = "internal"
	CodeMethod         = "method_not_allowed"
	CodeForbidden      = "forbidden"
	CodeUnauthorized   = "unauthorized"
	CodeRateLimited    = "rate_limited"
	CodeInFlight       = "in_flight"
	// CodeNoAgreement (409) answers an invocation whose executions
	// disagreed with no majority: the outcome is recorded on the chain
	// and the body's Result holds it. A retry with the same request ID
	// returns the same record; nothing runs again.
	CodeNoAgreement = "no_agreement"
	// CodeNoCandidates (503) answers an invocation for which no node of
	// the group took part in the election: nothing ran and nothing was
	// recorded, so it may be retried.
	CodeNoCandidates = "no_candidates"
	// CodeChainCorrupt (503): the answering replica found its chain store
	// damaged and serves none of its group's reads until repaired; any
	// other replica of the group can answer.
	CodeChainCorrupt = "chain_corrupt"
)

// HeadFromHeader converts a header to its wire form.
func HeadFromHeader(h chain.Header) Head {
	return Head{
		Version: h.Version, Group: h.Group, Height: h.Height, Hash: h.Hash().String(),
		PrevHash: h.PrevHash.String(), Timestamp: h.Timestamp, TxRoot: h.TxRoot.String(),
		TxCount: h.TxCount, LogSize: h.LogSize, LogRoot: h.LogRoot.String(),
	}
}

// FieldsOf decodes a transaction for people.
func FieldsOf(raw []byte) (TxFields, error) {
	t, err := chain.DecodeTx(raw)
	if err != nil {
		return TxFields{}, err
	}
	return TxFields{Kind: t.Kind.String(), Group: t.Group, Nonce: fmt.Sprintf("%x", t.Nonce), IdempotencyKey: t.IdempotencyKey, Submitter: t.Submitter, Payload: t.Payload}, nil
}

// BlockFromRaw decodes a canonical block into its wire form.
func BlockFromRaw(raw []byte) (Block, error) {
	b, err := chain.DecodeBlock(raw)
	if err != nil {
		return Block{}, err
	}
	out := Block{Head: HeadFromHeader(b.Header), Raw: raw, Txs: make([]BlockTx, len(b.Txs))}
	for i, tx := range b.Txs {
		f, _ := FieldsOf(tx) // DecodeBlock validated every transaction
		out.Txs[i] = BlockTx{ID: chain.TxID(tx).String(), LeafHash: chain.LeafHash(tx).String(), TxBytes: tx, Tx: f}
	}
	return out, nil
}

// APIError is an error answered by the server.
type APIError struct {
	Status int
	Body   ErrorBody
}

func (e *APIError) Error() string {
	return fmt.Sprintf("client: %d %s: %s", e.Status, e.Body.Code, e.Body.Error)
}

// Is lets errors.Is match an *APIError by code against the Err* values.
func (e *APIError) Is(target error) bool {
	var t *APIError
	if errors.As(target, &t) {
		return t.Body.Code == e.Body.Code
	}
	return false
}

// Errors to match with errors.Is against what the client returns.
var (
	ErrNotFound     = &APIError{Body: ErrorBody{Code: CodeNotFound}}
	ErrBadRequest   = &APIError{Body: ErrorBody{Code: CodeBadRequest}}
	ErrConflict     = &APIError{Body: ErrorBody{Code: CodeConflict}}
	ErrUnauthorized = &APIError{Body: ErrorBody{Code: CodeUnauthorized}}
	ErrForbidden    = &APIError{Body: ErrorBody{Code: CodeForbidden}}
	ErrNoLeader     = &APIError{Body: ErrorBody{Code: CodeNoLeader}}
	// ErrNoAgreement matches a recorded disagreement; the invoke methods
	// return its record alongside.
	ErrNoAgreement = &APIError{Body: ErrorBody{Code: CodeNoAgreement}}
	// ErrVerify is returned when a response fails client-side verification.
	ErrVerify = errors.New("client: verification failed")
)

// IsStatus reports whether err is an API error with the given HTTP status.
func IsStatus(err error, status int) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == status
}

// NoteKey answers GET /v1/groups/{g}/checkpoint/key: the note verifier
// key (C2SP signed-note) the answering node signs the group's checkpoints
// with, and its endorsement: the node's certificate-key signature over
// transparency.EndorsementStatement(VerifierKey), which
// pki.VerifySignature checks against CertChain and the cluster CA.
type NoteKey struct {
	Origin      string   `json:"origin"`
	VerifierKey string   `json:"verifier_key"`
	Node        string   `json:"node"`
	CertChain   [][]byte `json:"cert_chain"`
	Endorsement []byte   `json:"endorsement"`
}

// What a node's quantum-keyed channel takes its keys from
// (KeyManagerStatus.KeyManager).
const (
	// KeyManagerNone: the node runs no quantum-keyed channel.
	KeyManagerNone = "none"
	// KeyManagerInProcess: a key manager service runs beside the node;
	// its pools are reported.
	KeyManagerInProcess = "in_process"
	// KeyManagerExternal: an ETSI GS QKD 014 key manager in another
	// process (a vendor's); the node cannot see its pools.
	KeyManagerExternal = "external"
)

// KeyManagerStatus is the answer to GET /v1/keymanager: the key manager
// of the node's quantum-keyed channel and, for one in the node's process,
// the pools the gateway takes keys from with their fill level and the
// error rate (QBER) of the QKD blocks that filled them. No key material.
type KeyManagerStatus struct {
	KeyManager string `json:"key_manager"`
	// GatewaySAE is the gateway's SAE ID ("" with no key channel).
	GatewaySAE string `json:"gateway_sae"`
	// Pools is empty unless KeyManager is KeyManagerInProcess.
	Pools []kme.PoolStatus `json:"pools"`
}
