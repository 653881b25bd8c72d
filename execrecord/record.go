package execrecord

import (
	"qledger/chain"
	"qledger/election"
	"qledger/function"
)

// Record is what a group's leader commits for every invocation (section
// 7.3 of the framework paper): the request, the election, who executed and
// verified, every execution, the agreed result or the conflict, and the
// response. It is the payload of a chain.TxExec transaction.
//
// The JSON tags are the version 1 format (see Decode) and the form the
// record takes inside the cluster's RPC.
type Record struct {
	// Version is the encoding the record was read from: 1 for the JSON
	// written before the binary encoding, Version (2) otherwise.
	Version   int        `json:"version"`
	RequestID chain.Hash `json:"request_id"`
	// Caller is who invoked ("role:name" from its certificate; "" on a
	// cluster without a CA); Route how the gateway picked the group.
	Caller     string          `json:"caller,omitempty"`
	Route      string          `json:"route,omitempty"`
	Function   string          `json:"function"`
	FnVersion  string          `json:"function_version"`
	CodeHash   chain.Hash      `json:"code_hash"`
	InputHash  chain.Hash      `json:"input_hash"`
	Input      []byte          `json:"input"`
	Timestamp  int64           `json:"timestamp"`
	Election   election.Record `json:"election"`
	Executor   string          `json:"executor"`
	Verifier   string          `json:"verifier,omitempty"`
	TieBreaker string          `json:"tie_breaker,omitempty"`
	Executions []Execution     `json:"executions"`
	Agreed     bool            `json:"agreed"`
	// Verified: at least two nodes agreed.
	Verified   bool             `json:"verified"`
	Conflict   string           `json:"conflict,omitempty"`
	ResultHash chain.Hash       `json:"result_hash"`
	Outcome    function.Outcome `json:"outcome,omitempty"`
	ExitCode   uint32           `json:"exit_code"`
	Response   []byte           `json:"response,omitempty"`
	// Micros is the leader's time from the election's start to the
	// record's proposal.
	Micros int64 `json:"duration_us,omitempty"`
	// Origin is where the request came from, as far as the gateway was
	// configured to record it (it can be personal data); empty by default.
	Origin Origin `json:"origin,omitzero"`
}

// Origin is the request's origin beyond the caller's identity: the client
// address and selected request headers, each recorded only when the
// gateway is configured to.
type Origin struct {
	// ClientAddr is the client's address as the gateway saw it
	// (host:port of the connection).
	ClientAddr string `json:"client_addr,omitempty"`
	// Headers are the selected request headers, in the configured order.
	Headers []Header `json:"headers,omitempty"`
}

// Header is one recorded request header.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// IsZero reports whether nothing of the origin is recorded.
func (o Origin) IsZero() bool { return o.ClientAddr == "" && len(o.Headers) == 0 }

// Execution is one node's run of the request.
type Execution struct {
	NodeID   string           `json:"node_id"`
	Outcome  function.Outcome `json:"outcome,omitempty"`
	ExitCode uint32           `json:"exit_code"`
	Stdout   []byte           `json:"stdout,omitempty"`
	Hash     chain.Hash       `json:"hash"`
	Detail   string           `json:"detail,omitempty"`
	Micros   int64            `json:"micros"`
	// Err is set when the node could not run the request at all.
	Err string `json:"error,omitempty"`
}
