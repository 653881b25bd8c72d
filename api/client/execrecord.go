package client

import (
	"encoding/hex"

	"qledger/election"
	"qledger/execrecord"
)

// ExecRecord is an execution record — the payload of an "exec"
// transaction — in its wire form for clients: hashes in hex, outcomes by
// name. DecodeExecRecord reads one from a transaction's payload.
type ExecRecord struct {
	// Version is the encoding the record was stored in: 1 (JSON, written
	// by earlier versions), 2 (binary) or 3 (binary with an origin).
	Version         int    `json:"version"`
	RequestID       string `json:"request_id"`
	Caller          string `json:"caller,omitempty"`
	Route           string `json:"route,omitempty"`
	Function        string `json:"function"`
	FunctionVersion string `json:"function_version"`
	CodeHash        string `json:"code_hash"`
	InputHash       string `json:"input_hash"`
	// Input is the request payload (base64 in JSON).
	Input []byte `json:"input"`
	// Timestamp is the leader's clock at the election, Unix nanoseconds.
	Timestamp  int64           `json:"timestamp"`
	Election   election.Record `json:"election"`
	Executor   string          `json:"executor"`
	Verifier   string          `json:"verifier,omitempty"`
	TieBreaker string          `json:"tie_breaker,omitempty"`
	Executions []ExecRun       `json:"executions"`
	// Agreed: a majority of the executions agreed; Verified: at least two
	// did. Without agreement Outcome is "conflict" and Conflict says who
	// computed what.
	Agreed     bool   `json:"agreed"`
	Verified   bool   `json:"verified"`
	Conflict   string `json:"conflict,omitempty"`
	ResultHash string `json:"result_hash"`
	Outcome    string `json:"outcome"`
	ExitCode   uint32 `json:"exit_code"`
	// Response is the agreed stdout (base64 in JSON).
	Response       []byte `json:"response,omitempty"`
	DurationMicros int64  `json:"duration_us,omitempty"`
	// Origin is the request's origin as the gateway recorded it (client
	// address, selected headers), if configured to; version 3 records.
	Origin execrecord.Origin `json:"origin,omitzero"`
}

// ExecRun is one node's execution in an ExecRecord.
type ExecRun struct {
	NodeID string `json:"node_id"`
	// Outcome is the call's outcome ("ok", "trap", ...), "" if the node
	// could not run it (Error says why).
	Outcome  string `json:"outcome,omitempty"`
	ExitCode uint32 `json:"exit_code"`
	Stdout   []byte `json:"stdout,omitempty"`
	Hash     string `json:"hash"`
	Detail   string `json:"detail,omitempty"`
	Micros   int64  `json:"micros"`
	Error    string `json:"error,omitempty"`
}

// DecodeExecRecord decodes the payload of an "exec" transaction, in
// either encoding a chain may hold (execrecord.Decode), to its wire form.
// It does not verify the election; election.Verify(rec.Election) does.
func DecodeExecRecord(payload []byte) (ExecRecord, error) {
	r, err := execrecord.Decode(payload)
	if err != nil {
		return ExecRecord{}, err
	}
	return ExecRecordFrom(r), nil
}

// ExecRecordFrom converts a decoded record to its wire form.
func ExecRecordFrom(r execrecord.Record) ExecRecord {
	out := ExecRecord{
		Version: r.Version, RequestID: hex.EncodeToString(r.RequestID[:]), Caller: r.Caller, Route: r.Route,
		Function: r.Function, FunctionVersion: r.FnVersion, CodeHash: r.CodeHash.String(), InputHash: r.InputHash.String(),
		Input: r.Input, Timestamp: r.Timestamp, Election: r.Election,
		Executor: r.Executor, Verifier: r.Verifier, TieBreaker: r.TieBreaker,
		Agreed: r.Agreed, Verified: r.Verified, Conflict: r.Conflict, ResultHash: r.ResultHash.String(),
		Outcome: "conflict", ExitCode: r.ExitCode, Response: r.Response, DurationMicros: r.Micros, Origin: r.Origin,
	}
	if r.Agreed {
		out.Outcome = r.Outcome.String()
	}
	out.Executions = make([]ExecRun, len(r.Executions))
	for i, x := range r.Executions {
		out.Executions[i] = ExecRun{NodeID: x.NodeID, ExitCode: x.ExitCode, Stdout: x.Stdout, Hash: x.Hash.String(),
			Detail: x.Detail, Micros: x.Micros, Error: x.Err}
		if x.Outcome != 0 {
			out.Executions[i].Outcome = x.Outcome.String()
		}
	}
	return out
}
