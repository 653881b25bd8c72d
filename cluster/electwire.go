package cluster

import (
	"fmt"

	"qledger/election"
	"qledger/execrecord"
	"qledger/function"
	"qledger/internal/wire"
)

// Binary messages of the election and its executions. They travel under
// methods of their own (mElectNonce, mElectRevealRun), added after the
// JSON ones (mElectCommit, mElectReveal, mExecute), so an older node
// refuses them as an unknown method and the caller falls back to the JSON
// methods (see refusedMethod). Each body starts with a version byte. A
// candidate answers each with a fresh pledge (election.Nonces.Pledge) when
// it can, which the leader keeps (election.Pledges) and uses as the
// candidate's commitment in a later election, so that election needs no
// commit round trip with it.
//
//	mElectNonce request:      u8 version (1) | u8 op | [32] request ID
//	                          | op 3 only: [32] pledge
//	                          (op 1 commit, 2 reveal, 3 reveal the pledge)
//	mElectNonce response:     u8 version (1) | u16 len + node ID
//	                          | [32] h (op 1) or nonce | next pledge
//	mElectRevealRun request:  u8 version (1) | u8 by pledge (0 or 1)
//	                          | by pledge only: [32] pledge
//	                          | [32] request ID | u16 len + function
//	                          | [32] code hash | u64 deploy height | u32 len + input
//	mElectRevealRun response: u8 version (1) | [32] nonce | execution | next pledge
//	execution:                u16 len + node ID | u8 outcome (0: none) | u32 exit code
//	                          | u32 len + stdout | [32] hash | u32 len + detail
//	                          | u64 micros | u32 len + error
//	next pledge:              u8 present (0 or 1) | present only: [32] h
const electWireVersion = 1

// Operations of an mElectNonce request.
const (
	nonceCommit       uint8 = 1
	nonceReveal       uint8 = 2
	nonceRevealPledge uint8 = 3
)

// electWireErrors report bad bodies as ErrBadRequest (or ErrTooLarge), so
// they travel back to the caller as such.
var electWireErrors = wire.Errors{Truncated: ErrBadRequest, TooLarge: ErrTooLarge, Trailing: ErrBadRequest}

// nonceReq asks a candidate to commit or reveal for a request, or to
// reveal a pledge.
type nonceReq struct {
	Op        uint8
	RequestID [32]byte
	Pledge    [election.Size]byte // op nonceRevealPledge only
}

func (r nonceReq) marshal() []byte {
	e := wire.Encoder{B: make([]byte, 0, 2+32+election.Size)}
	e.U8(electWireVersion)
	e.U8(r.Op)
	e.Raw(r.RequestID[:])
	if r.Op == nonceRevealPledge {
		e.Raw(r.Pledge[:])
	}
	return e.B
}

func (r *nonceReq) unmarshal(b []byte) error {
	d := wire.NewDecoder(b, electWireErrors)
	if err := checkVersion(d, "election nonce request", electWireVersion); err != nil {
		return err
	}
	var out nonceReq
	out.Op = d.U8("op")
	d.Fixed(out.RequestID[:], "request ID")
	if out.Op == nonceRevealPledge {
		d.Fixed(out.Pledge[:], "pledge")
	}
	if err := d.Finish(); err != nil {
		return fmt.Errorf("cluster: election nonce request: %w", err)
	}
	if out.Op < nonceCommit || out.Op > nonceRevealPledge {
		return fmt.Errorf("%w: election nonce request: unknown op %d", ErrBadRequest, out.Op)
	}
	*r = out
	return nil
}

// nextPledge is a fresh pledge a candidate hands over with an answer.
type nextPledge struct {
	Present bool
	H       [election.Size]byte
}

func (p nextPledge) put(e *wire.Encoder) {
	if !p.Present {
		e.U8(0)
		return
	}
	e.U8(1)
	e.Raw(p.H[:])
}

func getNextPledge(d *wire.Decoder) nextPledge {
	var p nextPledge
	switch f := d.U8("pledge flag"); {
	case d.Err() != nil:
	case f == 1:
		p.Present = true
		d.Fixed(p.H[:], "pledge")
	case f != 0:
		d.Fail(fmt.Errorf("%w: pledge flag %d", ErrBadRequest, f))
	}
	return p
}

// nonceResp answers a nonceReq: the node's h (commit) or nonce (reveal).
type nonceResp struct {
	NodeID string
	Value  [election.Size]byte
	Next   nextPledge
}

func (r nonceResp) marshal() []byte {
	e := wire.Encoder{B: make([]byte, 0, 3+len(r.NodeID)+2*election.Size+1)}
	e.U8(electWireVersion)
	e.Bytes16([]byte(r.NodeID))
	e.Raw(r.Value[:])
	r.Next.put(&e)
	return e.B
}

func (r *nonceResp) unmarshal(b []byte) error {
	d := wire.NewDecoder(b, electWireErrors)
	if err := checkVersion(d, "election nonce response", electWireVersion); err != nil {
		return err
	}
	var out nonceResp
	out.NodeID = string(d.Bytes16("node ID", execrecord.MaxNameLen))
	d.Fixed(out.Value[:], "value")
	out.Next = getNextPledge(d)
	if err := d.Finish(); err != nil {
		return fmt.Errorf("cluster: election nonce response: %w", err)
	}
	*r = out
	return nil
}

// revealRunReq asks a candidate ranked first or second to reveal its
// nonce (for the request, or behind a pledge) and run the request in one
// exchange.
type revealRunReq struct {
	ByPledge bool
	Pledge   [election.Size]byte
	Exec     execReq
}

func (r revealRunReq) marshal() ([]byte, error) {
	x := r.Exec
	if len(x.Function) > execrecord.MaxNameLen || len(x.Input) > function.MaxInputBytes {
		return nil, fmt.Errorf("%w: reveal-and-run request for %.32q", ErrTooLarge, x.Function)
	}
	e := wire.Encoder{B: make([]byte, 0, 2+election.Size+32+2+len(x.Function)+32+8+4+len(x.Input))}
	e.U8(electWireVersion)
	nextPledge{Present: r.ByPledge, H: r.Pledge}.put(&e)
	e.Raw(x.RequestID[:])
	e.Bytes16([]byte(x.Function))
	e.Raw(x.CodeHash[:])
	e.U64(x.DeployHeight)
	e.Bytes32(x.Input)
	return e.B, nil
}

func (r *revealRunReq) unmarshal(b []byte) error {
	d := wire.NewDecoder(b, electWireErrors)
	if err := checkVersion(d, "reveal-and-run request", electWireVersion); err != nil {
		return err
	}
	var out revealRunReq
	p := getNextPledge(d)
	out.ByPledge, out.Pledge = p.Present, p.H
	x := &out.Exec
	d.Fixed(x.RequestID[:], "request ID")
	x.Function = string(d.Bytes16("function", execrecord.MaxNameLen))
	d.Fixed(x.CodeHash[:], "code hash")
	x.DeployHeight = d.U64("deploy height")
	x.Input = d.Bytes32("input", function.MaxInputBytes)
	if err := d.Finish(); err != nil {
		return fmt.Errorf("cluster: reveal-and-run request: %w", err)
	}
	*r = out
	return nil
}

// revealRunResp answers a revealRunReq: the nonce and the node's run.
type revealRunResp struct {
	Nonce [election.Size]byte
	Exec  execrecord.Execution
	Next  nextPledge
}

func (r revealRunResp) marshal() ([]byte, error) {
	x := r.Exec
	if len(x.NodeID) > execrecord.MaxNameLen || len(x.Stdout) > execrecord.MaxDataLen || len(x.Detail) > execrecord.MaxTextLen || len(x.Err) > execrecord.MaxTextLen {
		return nil, fmt.Errorf("%w: reveal-and-run answer of %.12s", ErrTooLarge, x.NodeID)
	}
	e := wire.Encoder{B: make([]byte, 0, 1+election.Size+2+len(x.NodeID)+1+4+4+len(x.Stdout)+32+4+len(x.Detail)+8+4+len(x.Err)+1+election.Size)}
	e.U8(electWireVersion)
	e.Raw(r.Nonce[:])
	execrecord.PutExecution(&e, &x)
	r.Next.put(&e)
	return e.B, nil
}

func (r *revealRunResp) unmarshal(b []byte) error {
	d := wire.NewDecoder(b, electWireErrors)
	if err := checkVersion(d, "reveal-and-run answer", electWireVersion); err != nil {
		return err
	}
	var out revealRunResp
	d.Fixed(out.Nonce[:], "nonce")
	out.Exec = execrecord.GetExecution(d)
	x := &out.Exec
	out.Next = getNextPledge(d)
	if err := d.Finish(); err != nil {
		return fmt.Errorf("cluster: reveal-and-run answer: %w", err)
	}
	if x.Outcome != 0 && !x.Outcome.Valid() {
		return fmt.Errorf("%w: reveal-and-run answer: outcome %d", ErrBadRequest, uint8(x.Outcome))
	}
	*r = out
	return nil
}

// checkVersion reads the version byte of a message called what, which
// must be want.
func checkVersion(d *wire.Decoder, what string, want uint8) error {
	v := d.U8("version")
	if err := d.Err(); err != nil {
		return fmt.Errorf("cluster: %s: %w", what, err)
	}
	if v != want {
		return fmt.Errorf("%w: %s version %d, this node reads %d", ErrBadRequest, what, v, want)
	}
	return nil
}
