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
	// Version is the binary encoding MarshalBinary writes.
	Version = 2
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
)

// Flags of the binary encoding.
const (
	flagAgreed   = 1 << 0
	flagVerified = 1 << 1
	knownFlags   = flagAgreed | flagVerified
)

var wireErrors = wire.Errors{Truncated: ErrTruncated, TooLarge: ErrTooLarge, Trailing: ErrTrailingBytes}

// MarshalBinary returns the canonical encoding of the record (version 2;
// the Version field is not consulted). Integers are big-endian; strings
// and byte fields are length-prefixed:
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
	e.U8(Version)
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
	for _, x := range r.Executions {
		e.Bytes16([]byte(x.NodeID))
		e.U8(uint8(x.Outcome))
		e.U32(x.ExitCode)
		e.Bytes32(x.Stdout)
		e.Raw(x.Hash[:])
		e.Bytes32([]byte(x.Detail))
		e.U64(uint64(x.Micros))
		e.Bytes32([]byte(x.Err))
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
	if err := checkOutcome(r.Outcome); err != nil {
		return err
	}
	for _, x := range r.Executions {
		if len(x.NodeID) > MaxNameLen || len(x.Stdout) > MaxDataLen || len(x.Detail) > MaxTextLen || len(x.Err) > MaxTextLen {
			return fmt.Errorf("%w: execution of %.12s", ErrTooLarge, x.NodeID)
		}
		if err := checkOutcome(x.Outcome); err != nil {
			return err
		}
	}
	return nil
}

func checkOutcome(o function.Outcome) error {
	if o != 0 && !o.Valid() {
		return fmt.Errorf("%w: outcome %d", ErrMalformed, uint8(o))
	}
	return nil
}

// UnmarshalBinary decodes what MarshalBinary wrote, setting Version to 2.
// It rejects other versions, truncated input, fields over their limits,
// unknown outcomes and flags, an election record that does not decode, and
// trailing bytes; whatever it accepts re-encodes to the same bytes. It does
// not verify the election (election.Verify) or the record's consistency.
// The result does not alias b.
func (r *Record) UnmarshalBinary(b []byte) error {
	d := wire.NewDecoder(b, wireErrors)
	if v := d.U8("version"); d.Err() == nil && v != Version {
		return fmt.Errorf("%w: record version %d", ErrUnknownVersion, v)
	}
	out := Record{Version: Version}
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
		var x Execution
		x.NodeID = string(d.Bytes16("node ID", MaxNameLen))
		x.Outcome = function.Outcome(d.U8("outcome"))
		x.ExitCode = d.U32("exit code")
		x.Stdout = d.Bytes32("stdout", MaxDataLen)
		d.Fixed(x.Hash[:], "hash")
		x.Detail = string(d.Bytes32("detail", MaxTextLen))
		x.Micros = int64(d.U64("micros"))
		x.Err = string(d.Bytes32("error", MaxTextLen))
		out.Executions = append(out.Executions, x)
	}
	flags := d.U8("flags")
	out.Agreed, out.Verified = flags&flagAgreed != 0, flags&flagVerified != 0
	out.Conflict = string(d.Bytes32("conflict", MaxTextLen))
	d.Fixed(out.ResultHash[:], "result hash")
	out.Outcome = function.Outcome(d.U8("outcome"))
	out.ExitCode = d.U32("exit code")
	out.Response = d.Bytes32("response", MaxDataLen)
	out.Micros = int64(d.U64("micros"))
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
