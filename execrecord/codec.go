package execrecord

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"qledger/function"
	"qledger/internal/wire"
)

// Encoding versions.
const (
	// Version is the binary encoding MarshalBinary writes for a record
	// without an origin.
	Version = 2
	// VersionOrigin is the binary encoding of a record with an origin:
	// version 2's fields followed by the origin.
	VersionOrigin = 3
	// VersionJSON is the JSON encoding records were written in before the
	// binary one; Decode still reads it.
	VersionJSON = 1
)

// Limits of the binary encoding.
const (
	// MaxNameLen bounds the caller, route, function name and version and
	// every node ID.
	MaxNameLen = 1024
	// MaxTextLen bounds the conflict and each execution's detail and
	// error.
	MaxTextLen = 1 << 20
	// MaxDataLen bounds the input, the response and each execution's
	// stdout (the runtime's own limits are function.MaxInputBytes and
	// function.MaxOutputLimit).
	MaxDataLen = 16 << 20
	// MaxElectionLen bounds the encoded election record.
	MaxElectionLen = 1 << 20
	// MaxExecutions bounds the executions of one record (the protocol runs
	// at most three).
	MaxExecutions = 16
	// MaxHeaders bounds the recorded request headers; MaxHeaderName and
	// MaxHeaderValue their names and values.
	MaxHeaders     = 32
	MaxHeaderName  = 255
	MaxHeaderValue = 4096
)

// Flags of the binary encoding.
const (
	flagAgreed   = 1 << 0
	flagVerified = 1 << 1
	knownFlags   = flagAgreed | flagVerified
)

var wireErrors = wire.Errors{Truncated: ErrTruncated, TooLarge: ErrTooLarge, Trailing: ErrTrailingBytes}

// MarshalBinary returns the canonical encoding of the record: version 2,
// or version 3 when it carries an origin (the Version field is not
// consulted). Integers are big-endian; strings and byte fields are
// length-prefixed:
//
//	u8   version (2)
//	[32] request ID
//	u16 len + caller       u16 len + route
//	u16 len + function     u16 len + function version
//	[32] code hash         [32] input hash
//	u32 len + input
//	u64  timestamp (Unix ns, two's complement)
//	u32 len + election record (election.Record.MarshalBinary)
//	u16 len + executor     u16 len + verifier     u16 len + tie-breaker
//	u8   number of executions, each:
//	     u16 len + node ID, u8 outcome (0: none), u32 exit code,
//	     u32 len + stdout, [32] hash, u32 len + detail,
//	     u64 micros, u32 len + error
//	u8   flags (bit 0 agreed, bit 1 verified; others zero)
//	u32 len + conflict
//	[32] result hash
//	u8   outcome (0: none)
//	u32  exit code
//	u32 len + response
//	u64  micros
//	version 3 only, the origin:
//	u16 len + client address
//	u8   number of headers (at most 32), each:
//	     u8 len + name, u16 len + value (at most 4096 bytes)
//
// It fails with ErrTooLarge for a field over its limit and ErrMalformed for
// an outcome that is neither zero nor a function.Outcome.
func (r Record) MarshalBinary() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	el, err := r.Election.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("%w: election: %v", ErrTooLarge, err)
	}
	if len(el) > MaxElectionLen {
		return nil, fmt.Errorf("%w: election record of %d bytes", ErrTooLarge, len(el))
	}
	e := &wire.Encoder{B: make([]byte, 0, 512+len(el)+len(r.Input)+len(r.Response)+len(r.Conflict))}
	if r.Origin.IsZero() {
		e.U8(Version)
	} else {
		e.U8(VersionOrigin)
	}
	e.Raw(r.RequestID[:])
	for _, s := range []string{r.Caller, r.Route, r.Function, r.FnVersion} {
		e.Bytes16([]byte(s))
	}
	e.Raw(r.CodeHash[:])
	e.Raw(r.InputHash[:])
	e.Bytes32(r.Input)
	e.U64(uint64(r.Timestamp))
	e.Bytes32(el)
	for _, s := range []string{r.Executor, r.Verifier, r.TieBreaker} {
		e.Bytes16([]byte(s))
	}
	e.U8(uint8(len(r.Executions)))
	for i := range r.Executions {
		PutExecution(e, &r.Executions[i])
	}
	var flags uint8
	if r.Agreed {
		flags |= flagAgreed
	}
	if r.Verified {
		flags |= flagVerified
	}
	e.U8(flags)
	e.Bytes32([]byte(r.Conflict))
	e.Raw(r.ResultHash[:])
	e.U8(uint8(r.Outcome))
	e.U32(r.ExitCode)
	e.Bytes32(r.Response)
	e.U64(uint64(r.Micros))
	if !r.Origin.IsZero() {
		e.Bytes16([]byte(r.Origin.ClientAddr))
		e.U8(uint8(len(r.Origin.Headers)))
		for _, h := range r.Origin.Headers {
			e.Bytes8([]byte(h.Name))
			e.Bytes16([]byte(h.Value))
		}
	}
	return e.B, nil
}

// check refuses what MarshalBinary cannot encode canonically.
func (r Record) check() error {
	for _, s := range []string{r.Caller, r.Route, r.Function, r.FnVersion, r.Executor, r.Verifier, r.TieBreaker} {
		if len(s) > MaxNameLen {
			return fmt.Errorf("%w: name of %d bytes", ErrTooLarge, len(s))
		}
	}
	if len(r.Input) > MaxDataLen || len(r.Response) > MaxDataLen || len(r.Conflict) > MaxTextLen {
		return fmt.Errorf("%w: input, response or conflict", ErrTooLarge)
	}
	if len(r.Executions) > MaxExecutions {
		return fmt.Errorf("%w: %d executions", ErrTooLarge, len(r.Executions))
	}
	if len(r.Origin.ClientAddr) > MaxNameLen || len(r.Origin.Headers) > MaxHeaders {
		return fmt.Errorf("%w: origin", ErrTooLarge)
	}
	for _, h := range r.Origin.Headers {
		if len(h.Name) > MaxHeaderName || len(h.Value) > MaxHeaderValue {
			return fmt.Errorf("%w: header %.32q", ErrTooLarge, h.Name)
		}
		if h.Name == "" {
			return fmt.Errorf("%w: a header without a name", ErrMalformed)
		}
	}
	if err := checkOutcome(r.Outcome); err != nil {
		return err
	}
	for i := range r.Executions {
		if err := CheckExecution(&r.Executions[i]); err != nil {
			return err
		}
	}
	return nil
}

// PutExecution appends x to e in the record's encoding of an execution;
// the bounds (MaxNameLen, MaxDataLen, MaxTextLen) are the caller's to
// check first (CheckExecution).
func PutExecution(e *wire.Encoder, x *Execution) {
	e.Bytes16([]byte(x.NodeID))
	e.U8(uint8(x.Outcome))
	e.U32(x.ExitCode)
	e.Bytes32(x.Stdout)
	e.Raw(x.Hash[:])
	e.Bytes32([]byte(x.Detail))
	e.U64(uint64(x.Micros))
	e.Bytes32([]byte(x.Err))
}

// GetExecution reads an execution PutExecution wrote; a short or
// oversized field is d's error. The outcome is not checked
// (CheckExecution).
func GetExecution(d *wire.Decoder) Execution {
	var x Execution
	x.NodeID = string(d.Bytes16("node ID", MaxNameLen))
	x.Outcome = function.Outcome(d.U8("outcome"))
	x.ExitCode = d.U32("exit code")
	x.Stdout = d.Bytes32("stdout", MaxDataLen)
	d.Fixed(x.Hash[:], "hash")
	x.Detail = string(d.Bytes32("detail", MaxTextLen))
	x.Micros = int64(d.U64("micros"))
	x.Err = string(d.Bytes32("error", MaxTextLen))
	return x
}

// CheckExecution reports an execution whose fields exceed the record's
// bounds (ErrTooLarge) or whose outcome is unknown (ErrMalformed).
func CheckExecution(x *Execution) error {
	if len(x.NodeID) > MaxNameLen || len(x.Stdout) > MaxDataLen || len(x.Detail) > MaxTextLen || len(x.Err) > MaxTextLen {
		return fmt.Errorf("%w: execution of %.12s", ErrTooLarge, x.NodeID)
	}
	return checkOutcome(x.Outcome)
}

func checkOutcome(o function.Outcome) error {
	if o != 0 && !o.Valid() {
		return fmt.Errorf("%w: outcome %d", ErrMalformed, uint8(o))
	}
	return nil
}

// UnmarshalBinary decodes what MarshalBinary wrote, setting Version to 2
// or 3. It rejects other versions, a version 3 record without an origin, truncated input, fields over their limits,
// unknown outcomes and flags, an election record that does not decode, and
// trailing bytes; whatever it accepts re-encodes to the same bytes. It does
// not verify the election (election.Verify) or the record's consistency.
// The result does not alias b.
func (r *Record) UnmarshalBinary(b []byte) error {
	d := wire.NewDecoder(b, wireErrors)
	v := d.U8("version")
	if d.Err() == nil && v != Version && v != VersionOrigin {
		return fmt.Errorf("%w: record version %d", ErrUnknownVersion, v)
	}
	out := Record{Version: int(v)}
	d.Fixed(out.RequestID[:], "request ID")
	for _, s := range []*string{&out.Caller, &out.Route, &out.Function, &out.FnVersion} {
		*s = string(d.Bytes16("name", MaxNameLen))
	}
	d.Fixed(out.CodeHash[:], "code hash")
	d.Fixed(out.InputHash[:], "input hash")
	out.Input = d.Bytes32("input", MaxDataLen)
	out.Timestamp = int64(d.U64("timestamp"))
	if el := d.Bytes32("election", MaxElectionLen); d.Err() == nil {
		if err := out.Election.UnmarshalBinary(el); err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	}
	for _, s := range []*string{&out.Executor, &out.Verifier, &out.TieBreaker} {
		*s = string(d.Bytes16("role", MaxNameLen))
	}
	n := int(d.U8("execution count"))
	if d.Err() == nil && n > MaxExecutions {
		return fmt.Errorf("%w: %d executions", ErrTooLarge, n)
	}
	for i := 0; i < n && d.Err() == nil; i++ {
		out.Executions = append(out.Executions, GetExecution(d))
	}
	flags := d.U8("flags")
	out.Agreed, out.Verified = flags&flagAgreed != 0, flags&flagVerified != 0
	out.Conflict = string(d.Bytes32("conflict", MaxTextLen))
	d.Fixed(out.ResultHash[:], "result hash")
	out.Outcome = function.Outcome(d.U8("outcome"))
	out.ExitCode = d.U32("exit code")
	out.Response = d.Bytes32("response", MaxDataLen)
	out.Micros = int64(d.U64("micros"))
	if v == VersionOrigin {
		out.Origin = decodeOrigin(d)
		if d.Err() == nil && out.Origin.IsZero() {
			return fmt.Errorf("%w: version 3 record without an origin", ErrMalformed)
		}
	}
	if err := d.Finish(); err != nil {
		return fmt.Errorf("execrecord: decode: %w", err)
	}
	if flags&^knownFlags != 0 {
		return fmt.Errorf("%w: flags %#x", ErrMalformed, flags)
	}
	if err := out.check(); err != nil {
		return err
	}
	*r = out
	return nil
}

// Decode reads an execution record from a TxExec payload in either form a
// chain may hold: the binary encoding (Version 2, what leaders write) or
// the JSON of version 1 that leaders wrote before it. A payload starting
// with '{' is JSON; it must be exactly one object with only the known
// fields and "version": 1.
func Decode(payload []byte) (Record, error) {
	var r Record
	if len(payload) > 0 && payload[0] == '{' {
		return r, r.unmarshalV1(payload)
	}
	return r, r.UnmarshalBinary(payload)
}

// unmarshalV1 reads a version 1 (JSON) record strictly.
func (r *Record) unmarshalV1(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var out Record
	if err := dec.Decode(&out); err != nil {
		return fmt.Errorf("%w: version 1 JSON: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: data after the version 1 JSON record", ErrTrailingBytes)
	}
	if out.Version != VersionJSON {
		return fmt.Errorf("%w: JSON record version %d", ErrUnknownVersion, out.Version)
	}
	*r = out
	return nil
}

func decodeOrigin(d *wire.Decoder) Origin {
	var o Origin
	o.ClientAddr = string(d.Bytes16("client address", MaxNameLen))
	n := int(d.U8("header count"))
	if d.Err() == nil && n > MaxHeaders {
		d.Fail(fmt.Errorf("%w: %d headers", ErrTooLarge, n))
	}
	for i := 0; i < n && d.Err() == nil; i++ {
		var h Header
		h.Name = string(d.Bytes8("header name", MaxHeaderName))
		h.Value = string(d.Bytes16("header value", MaxHeaderValue))
		o.Headers = append(o.Headers, h)
	}
	return o
}
