package tiny

// This file is a minimal WebAssembly 1.0 binary encoder: enough to emit the
// type, import, function, memory, export, code and data sections of small
// WASI command modules by hand. See the WebAssembly core specification,
// section 5 ("Binary Format").

// Value types.
const (
	i32 byte = 0x7f
	i64 byte = 0x7e
)

// Section IDs.
const (
	secType     byte = 1
	secImport   byte = 2
	secFunction byte = 3
	secMemory   byte = 5
	secExport   byte = 7
	secCode     byte = 10
	secData     byte = 11
)

// uleb encodes v as unsigned LEB128.
func uleb(v uint64) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			out = append(out, b|0x80)
			continue
		}
		return append(out, b)
	}
}

// sleb encodes v as signed LEB128.
func sleb(v int64) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && b&0x40 == 0) || (v == -1 && b&0x40 != 0) {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func name(s string) []byte { return cat(uleb(uint64(len(s))), []byte(s)) }

func vec(items [][]byte) []byte { return cat(uleb(uint64(len(items))), cat(items...)) }

func section(id byte, body []byte) []byte {
	return cat([]byte{id}, uleb(uint64(len(body))), body)
}

// Instructions. Each returns its encoding so bodies read as sequences.
func i32c(v int32) []byte          { return cat([]byte{0x41}, sleb(int64(v))) }
func i64c(v int64) []byte          { return cat([]byte{0x42}, sleb(v)) }
func lget(i uint32) []byte         { return cat([]byte{0x20}, uleb(uint64(i))) }
func lset(i uint32) []byte         { return cat([]byte{0x21}, uleb(uint64(i))) }
func ltee(i uint32) []byte         { return cat([]byte{0x22}, uleb(uint64(i))) }
func call(f uint32) []byte         { return cat([]byte{0x10}, uleb(uint64(f))) }
func br(depth uint32) []byte       { return cat([]byte{0x0c}, uleb(uint64(depth))) }
func brIf(depth uint32) []byte     { return cat([]byte{0x0d}, uleb(uint64(depth))) }
func load32(offset uint32) []byte  { return cat([]byte{0x28, 2}, uleb(uint64(offset))) }
func store32(offset uint32) []byte { return cat([]byte{0x36, 2}, uleb(uint64(offset))) }
func load8u(offset uint32) []byte  { return cat([]byte{0x2d, 0}, uleb(uint64(offset))) }
func store8(offset uint32) []byte  { return cat([]byte{0x3a, 0}, uleb(uint64(offset))) }

var (
	block       = []byte{0x02, 0x40} // block with no result
	loop        = []byte{0x03, 0x40} // loop with no result
	ifThen      = []byte{0x04, 0x40} // if with no result
	elseThen    = []byte{0x05}
	end         = []byte{0x0b}
	unreachable = []byte{0x00}
	drop        = []byte{0x1a}
	i32Eqz      = []byte{0x45}
	i32Eq       = []byte{0x46}
	i32Ne       = []byte{0x47}
	i32LtS      = []byte{0x48}
	i32LtU      = []byte{0x49}
	i32GeU      = []byte{0x4f}
	i32Add      = []byte{0x6a}
	i32Sub      = []byte{0x6b}
	memoryGrow  = []byte{0x40, 0x00}
	memoryCopy  = []byte{0xfc, 0x0a, 0x00, 0x00}
	memoryFill  = []byte{0xfc, 0x0b, 0x00}
)

type funcType struct{ params, results []byte }

type importFunc struct {
	module, field string
	typ           uint32
}

type funcDef struct {
	typ    uint32
	locals []byte // one entry per local, its value type
	body   []byte // without the final end
	export string // "" = not exported
}

type dataSeg struct {
	offset int32
	bytes  []byte
}

// builder assembles one module. Declare every import before the first
// function so that function indices are stable.
type builder struct {
	types    []funcType
	imports  []importFunc
	funcs    []funcDef
	memPages uint32 // 0 = no memory
	data     []dataSeg
}

func (b *builder) typeIndex(params, results []byte) uint32 {
	for i, t := range b.types {
		if string(t.params) == string(params) && string(t.results) == string(results) {
			return uint32(i)
		}
	}
	b.types = append(b.types, funcType{params, results})
	return uint32(len(b.types) - 1)
}

// importFunc declares an imported function and returns its index. It must
// be called before the first call to function, or the indices returned by
// function would shift.
func (b *builder) importFunc(module, field string, params, results []byte) uint32 {
	b.imports = append(b.imports, importFunc{module, field, b.typeIndex(params, results)})
	return uint32(len(b.imports) - 1)
}

// function defines a function and returns its index.
func (b *builder) function(export string, params, results, locals []byte, body ...[]byte) uint32 {
	b.funcs = append(b.funcs, funcDef{typ: b.typeIndex(params, results), locals: locals, body: cat(body...), export: export})
	return uint32(len(b.imports) + len(b.funcs) - 1)
}

func (b *builder) encode() []byte {
	out := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

	var types [][]byte
	for _, t := range b.types {
		types = append(types, cat([]byte{0x60}, uleb(uint64(len(t.params))), t.params, uleb(uint64(len(t.results))), t.results))
	}
	out = append(out, section(secType, vec(types))...)

	if len(b.imports) > 0 {
		var imps [][]byte
		for _, im := range b.imports {
			imps = append(imps, cat(name(im.module), name(im.field), []byte{0x00}, uleb(uint64(im.typ))))
		}
		out = append(out, section(secImport, vec(imps))...)
	}

	var fidx [][]byte
	for _, f := range b.funcs {
		fidx = append(fidx, uleb(uint64(f.typ)))
	}
	out = append(out, section(secFunction, vec(fidx))...)

	if b.memPages > 0 {
		out = append(out, section(secMemory, vec([][]byte{cat([]byte{0x00}, uleb(uint64(b.memPages)))}))...)
	}

	var exps [][]byte
	if b.memPages > 0 {
		exps = append(exps, cat(name("memory"), []byte{0x02, 0x00}))
	}
	for i, f := range b.funcs {
		if f.export != "" {
			exps = append(exps, cat(name(f.export), []byte{0x00}, uleb(uint64(len(b.imports)+i))))
		}
	}
	out = append(out, section(secExport, vec(exps))...)

	var bodies [][]byte
	for _, f := range b.funcs {
		var locals [][]byte
		for _, l := range f.locals {
			locals = append(locals, []byte{0x01, l})
		}
		body := cat(vec(locals), f.body, end)
		bodies = append(bodies, cat(uleb(uint64(len(body))), body))
	}
	out = append(out, section(secCode, vec(bodies))...)

	if len(b.data) > 0 {
		var segs [][]byte
		for _, d := range b.data {
			segs = append(segs, cat([]byte{0x00}, i32c(d.offset), end, uleb(uint64(len(d.bytes))), d.bytes))
		}
		out = append(out, section(secData, vec(segs))...)
	}
	return out
}
