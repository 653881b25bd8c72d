package cluster

import (
	"context"
	"fmt"
	"math"

	"qledger/execrecord"
	"qledger/function"
	"qledger/internal/wire"
)

// The binary form of a forwarded invocation (mInvokeBinary), beside the
// JSON one of older releases (mInvoke): a node refuses a method it does
// not know, and callInvoke sends the same request again as JSON. The
// answer carries the execution record in its canonical binary encoding
// (execrecord.Record.MarshalBinary).
//
//	request:  u8 version (1) | u32 group | u8 hops | [32] request ID
//	          | [32] election key | u16 len + function | u16 len + key ID
//	          | u16 len + caller | u16 len + route | u32 len + input
//	          | u16 len + origin client address
//	          | u8 header count, each: u8 len + name, u16 len + value
//	response: u8 version (1) | u8 record version (Record.Version)
//	          | u32 len + record | [32] receipt ID | u32 group
//	          | u64 height | u64 index | u8 duplicate (0 or 1)
const invokeWireVersion = 1

// marshalInvokeRequest encodes req for mInvokeBinary. It refuses what
// the encoding cannot hold with ErrTooLarge or ErrBadRequest.
func marshalInvokeRequest(req InvokeRequest) ([]byte, error) {
	o := req.Origin
	switch {
	case req.Group < 0 || req.Group > math.MaxInt32 || req.Hops < 0 || req.Hops > math.MaxUint8:
		return nil, fmt.Errorf("%w: invocation of group %d after %d hops", ErrBadRequest, req.Group, req.Hops)
	case len(req.Function) > execrecord.MaxNameLen || len(req.KeyID) > execrecord.MaxNameLen || len(req.Caller) > execrecord.MaxNameLen ||
		len(req.Route) > execrecord.MaxNameLen || len(o.ClientAddr) > execrecord.MaxNameLen:
		return nil, fmt.Errorf("%w: invocation of %.32q: a name over %d bytes", ErrTooLarge, req.Function, execrecord.MaxNameLen)
	case len(req.Input) > function.MaxInputBytes:
		return nil, fmt.Errorf("%w: invocation input of %d bytes", ErrTooLarge, len(req.Input))
	case len(o.Headers) > execrecord.MaxHeaders:
		return nil, fmt.Errorf("%w: %d origin headers", ErrTooLarge, len(o.Headers))
	}
	size := 1 + 4 + 1 + 64 + 2*5 + len(req.Function) + len(req.KeyID) + len(req.Caller) + len(req.Route) + len(o.ClientAddr) + 4 + len(req.Input) + 1
	for _, h := range o.Headers {
		if len(h.Name) > execrecord.MaxHeaderName || len(h.Value) > execrecord.MaxHeaderValue {
			return nil, fmt.Errorf("%w: origin header %.32q", ErrTooLarge, h.Name)
		}
		size += 3 + len(h.Name) + len(h.Value)
	}
	e := wire.Encoder{B: make([]byte, 0, size)}
	e.U8(invokeWireVersion)
	e.U32(uint32(req.Group))
	e.U8(uint8(req.Hops))
	e.Raw(req.RequestID[:])
	e.Raw(req.ElectionKey[:])
	for _, s := range []string{req.Function, req.KeyID, req.Caller, req.Route} {
		e.Bytes16([]byte(s))
	}
	e.Bytes32(req.Input)
	e.Bytes16([]byte(o.ClientAddr))
	e.U8(uint8(len(o.Headers)))
	for _, h := range o.Headers {
		e.Bytes8([]byte(h.Name))
		e.Bytes16([]byte(h.Value))
	}
	return e.B, nil
}

// unmarshalInvokeRequest decodes what marshalInvokeRequest wrote; bad
// input is ErrBadRequest (or ErrTooLarge), with what was wrong.
func unmarshalInvokeRequest(b []byte) (InvokeRequest, error) {
	d := wire.NewDecoder(b, electWireErrors)
	if err := checkVersion(d, "invocation", invokeWireVersion); err != nil {
		return InvokeRequest{}, err
	}
	var req InvokeRequest
	group := d.U32("group")
	req.Group = int(group & math.MaxInt32)
	req.Hops = int(d.U8("hops"))
	d.Fixed(req.RequestID[:], "request ID")
	d.Fixed(req.ElectionKey[:], "election key")
	for _, s := range []*string{&req.Function, &req.KeyID, &req.Caller, &req.Route} {
		*s = string(d.Bytes16("name", execrecord.MaxNameLen))
	}
	req.Input = d.Bytes32("input", function.MaxInputBytes)
	req.Origin.ClientAddr = string(d.Bytes16("origin client address", execrecord.MaxNameLen))
	n := int(d.U8("origin header count"))
	if d.Err() == nil && n > execrecord.MaxHeaders {
		d.Fail(fmt.Errorf("%w: %d origin headers", ErrTooLarge, n))
	}
	for i := 0; i < n && d.Err() == nil; i++ {
		var h execrecord.Header
		h.Name = string(d.Bytes8("origin header name", execrecord.MaxHeaderName))
		h.Value = string(d.Bytes16("origin header value", execrecord.MaxHeaderValue))
		req.Origin.Headers = append(req.Origin.Headers, h)
	}
	if err := d.Finish(); err != nil {
		return InvokeRequest{}, fmt.Errorf("cluster: invocation: %w", err)
	}
	if group > math.MaxInt32 {
		return InvokeRequest{}, fmt.Errorf("%w: invocation of group %d", ErrBadRequest, group)
	}
	return req, nil
}

// marshalInvokeResult encodes res for mInvokeBinary.
func marshalInvokeResult(res InvokeResult) ([]byte, error) {
	rec, err := res.Record.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("cluster: invocation answer: %w", err)
	}
	if res.Record.Version < 0 || res.Record.Version > math.MaxUint8 || res.Receipt.Group < 0 || res.Receipt.Group > math.MaxInt32 {
		return nil, fmt.Errorf("%w: invocation answer: record version %d, group %d", ErrBadRequest, res.Record.Version, res.Receipt.Group)
	}
	e := wire.Encoder{B: make([]byte, 0, 2+4+len(rec)+32+4+8+8+1)}
	e.U8(invokeWireVersion)
	e.U8(uint8(res.Record.Version))
	e.Bytes32(rec)
	e.Raw(res.Receipt.ID[:])
	e.U32(uint32(res.Receipt.Group))
	e.U64(res.Receipt.Height)
	e.U64(res.Receipt.Index)
	dup := uint8(0)
	if res.Receipt.Duplicate {
		dup = 1
	}
	e.U8(dup)
	return e.B, nil
}

// unmarshalInvokeResult decodes what marshalInvokeResult wrote.
func unmarshalInvokeResult(b []byte) (InvokeResult, error) {
	d := wire.NewDecoder(b, electWireErrors)
	if err := checkVersion(d, "invocation answer", invokeWireVersion); err != nil {
		return InvokeResult{}, err
	}
	var res InvokeResult
	version := int(d.U8("record version"))
	raw := d.Bytes32("record", maxFrame)
	d.Fixed(res.Receipt.ID[:], "receipt ID")
	group := d.U32("receipt group")
	res.Receipt.Group = int(group & math.MaxInt32)
	res.Receipt.Height = d.U64("receipt height")
	res.Receipt.Index = d.U64("receipt index")
	dup := d.U8("duplicate")
	if err := d.Finish(); err != nil {
		return InvokeResult{}, fmt.Errorf("cluster: invocation answer: %w", err)
	}
	if dup > 1 || group > math.MaxInt32 {
		return InvokeResult{}, fmt.Errorf("%w: invocation answer: duplicate flag %d, group %d", ErrBadRequest, dup, group)
	}
	res.Receipt.Duplicate = dup == 1
	rec, err := execrecord.Decode(raw)
	if err != nil {
		return InvokeResult{}, fmt.Errorf("%w: invocation answer: %v", ErrBadRequest, err)
	}
	rec.Version = version
	res.Record = rec
	return res, nil
}

// callInvoke forwards req to the node at addr: binary (mInvokeBinary),
// or as JSON (mInvoke) to a node of an older release that refuses it.
func (n *Node) callInvoke(ctx context.Context, addr string, req InvokeRequest) (InvokeResult, error) {
	body, err := marshalInvokeRequest(req)
	if err != nil {
		return InvokeResult{}, err
	}
	resp, err := n.client.callRaw(ctx, addr, mInvokeBinary, body)
	if refusedMethod(err) {
		var res InvokeResult
		err := n.client.call(ctx, addr, mInvoke, req, &res)
		return res, err
	}
	if err != nil {
		return InvokeResult{}, err
	}
	return unmarshalInvokeResult(resp)
}

// handleInvokeBinary serves mInvokeBinary as the mInvoke handler serves
// mInvoke.
func (n *Node) handleInvokeBinary(ctx context.Context, body []byte) (any, error) {
	req, err := unmarshalInvokeRequest(body)
	if err != nil {
		return nil, err
	}
	res, err := n.serveInvoke(ctx, req)
	if err != nil {
		return nil, err
	}
	out, err := marshalInvokeResult(res)
	if err != nil {
		return nil, err
	}
	return rawBody(out), nil
}
