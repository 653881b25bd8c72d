package execute

import (
	"bytes"
	"fmt"
)

// Static limits a module must respect before it reaches the compiler.
//
// wazero's decoder sizes its slices from the counts a module declares, and
// bounds neither locals nor tables, so without these checks a module of a
// few dozen bytes can make the node allocate gigabytes and die: a vector
// count of 2^32, a function with billions of locals, a data segment
// claiming 4 GiB, or (at run time, outside the memory page limit) a
// table.grow of a billion entries.
const (
	// MaxVectorLen bounds every count in the module: types, imports,
	// functions, globals, exports, element and data segments and their
	// contents, names.
	MaxVectorLen = 1 << 20
	// MaxFunctionLocals bounds the locals one function declares.
	MaxFunctionLocals = 50_000
	// MaxTables bounds the tables a module defines.
	MaxTables = 16
	// MaxTableElements bounds the sum of the tables' maximum sizes. A table
	// that declares no maximum is given its initial size as maximum (see
	// scanModule), so it cannot grow.
	MaxTableElements = 1 << 20
)

// Section IDs (WebAssembly core specification, 5.5.2).
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
)

// moduleShape is what scanModule reports of a module.
type moduleShape struct {
	imports   []importRef // function imports
	maxLocals uint64      // the most locals any function declares
	tables    int
	// code is the module to compile: the input itself, or a copy whose
	// table section gives every table without a maximum its initial size
	// as maximum.
	code []byte
}

type importRef struct{ module, name string }

// scanModule walks the module's structure — every section and every vector
// in it, but not the instructions of function bodies — and checks what the
// compiler does not: every count is within MaxVectorLen and within the
// bytes that remain to hold it, the limits above, and that the module
// imports nothing but functions. Full validation is left to the compiler;
// this walk only has to be as strict as wazero's decoder or stricter.
// Errors wrap ErrInvalidModule or ErrUnsupportedImport.
//
// Tables without a declared maximum (Go's linker emits one) are rewritten
// to declare their initial size as maximum, so that table.grow, which
// wazero would let allocate up to 2^32 entries, fails instead (it returns
// -1, deterministically). Only the table section changes; the code hash
// still names the deployed bytes.
func scanModule(code []byte) (moduleShape, error) {
	shape := moduleShape{code: code}
	if !bytes.HasPrefix(code, []byte("\x00asm\x01\x00\x00\x00")) {
		return shape, fmt.Errorf("%w: not a WebAssembly 1.0 binary (bad magic or version)", ErrInvalidModule)
	}
	r := &wasmReader{b: code, off: 8}
	for r.more() {
		start := r.off
		id := r.byte()
		body := r.bytes(int(r.u32()))
		if r.err != nil {
			break
		}
		s := &wasmReader{b: body}
		var fixed []byte
		var err error
		switch id {
		case secCustom:
			scanCustom(s)
		case secType:
			s.each(3, "types", func() {
				if form := s.byte(); form != 0x60 && s.err == nil {
					s.fail("type form 0x%x", form)
				}
				s.valueTypes("parameters")
				s.valueTypes("results")
			})
		case secImport:
			err = scanImports(s, &shape)
		case secFunction:
			s.each(1, "functions", func() { s.u32() })
		case secTable:
			fixed, err = scanTables(s, &shape)
		case secMemory:
			if n := s.each(2, "memories", func() { s.limits() }); n > 1 {
				s.fail("%d memories (at most 1)", n)
			}
		case secGlobal:
			s.each(3, "globals", func() { s.valueType(); s.byte(); s.constExpr() })
		case secExport:
			s.each(3, "exports", func() { s.name(); s.byte(); s.u32() })
		case secStart:
			s.u32()
		case secElement:
			s.each(3, "element segments", func() { scanElement(s) })
		case secCode:
			err = scanCode(s, &shape)
		case secData:
			s.each(2, "data segments", func() { scanData(s) })
		case secDataCount:
			if n := s.u32(); n > MaxVectorLen {
				s.fail("data count %d (at most %d)", n, MaxVectorLen)
			}
		default:
			return shape, fmt.Errorf("%w: unsupported section %d", ErrInvalidModule, id)
		}
		if err != nil {
			return shape, err
		}
		if s.err == nil && id != secCustom && s.more() {
			s.fail("%d bytes after the section's content", len(s.b)-s.off)
		}
		if s.err != nil {
			return shape, fmt.Errorf("%w: section %d: %v", ErrInvalidModule, id, s.err)
		}
		if fixed != nil {
			out := append([]byte(nil), code[:start]...)
			out = append(out, id)
			out = appendULEB(out, uint32(len(fixed)))
			out = append(out, fixed...)
			shape.code = append(out, code[r.off:]...)
		}
	}
	if r.err != nil {
		return shape, fmt.Errorf("%w: %v", ErrInvalidModule, r.err)
	}
	return shape, nil
}

func scanImports(s *wasmReader, shape *moduleShape) error {
	var unsupported error
	s.each(4, "imports", func() {
		mod, name, kind := s.name(), s.name(), s.byte()
		switch kind {
		case 0:
			s.u32() // type index
			shape.imports = append(shape.imports, importRef{mod, name})
		default:
			if s.err == nil && unsupported == nil {
				what := map[byte]string{1: "table", 2: "memory", 3: "global", 4: "tag"}[kind]
				if what == "" {
					what = fmt.Sprintf("import of kind %d", kind)
				}
				unsupported = fmt.Errorf("%w: %s %s.%s (only functions can be imported)", ErrUnsupportedImport, what, mod, name)
			}
			s.err = errStop
		}
	})
	if unsupported != nil {
		return unsupported
	}
	return nil
}

// scanTables checks the table section and, if a table declares no maximum,
// returns the section body re-encoded with max = min for such tables.
func scanTables(s *wasmReader, shape *moduleShape) ([]byte, error) {
	n := s.u32()
	if s.err == nil && n > MaxTables {
		return nil, fmt.Errorf("%w: %d tables (at most %d)", ErrInvalidModule, n, MaxTables)
	}
	out := appendULEB(nil, n)
	rewrite := false
	var total uint64
	for i := uint32(0); i < n && s.err == nil; i++ {
		typ := s.byte()
		if typ != 0x70 && typ != 0x6f {
			return nil, fmt.Errorf("%w: table %d has unsupported type 0x%x", ErrInvalidModule, i, typ)
		}
		flags := s.byte()
		min, max := s.u32(), uint32(0)
		switch flags {
		case 0x00:
			max, rewrite = min, true
		case 0x01:
			max = s.u32()
		default:
			return nil, fmt.Errorf("%w: table %d has limit flags 0x%x", ErrInvalidModule, i, flags)
		}
		total += uint64(max)
		if s.err == nil && total > MaxTableElements {
			return nil, fmt.Errorf("%w: tables of more than %d elements in all", ErrInvalidModule, MaxTableElements)
		}
		out = append(out, typ, 0x01)
		out = appendULEB(appendULEB(out, min), max)
		shape.tables++
	}
	if !rewrite || s.err != nil {
		return nil, nil
	}
	return out, nil
}

func scanCode(s *wasmReader, shape *moduleShape) error {
	var tooMany error
	s.each(2, "function bodies", func() {
		body := &wasmReader{b: s.bytes(int(s.u32()))}
		var locals uint64
		body.each(2, "local declarations", func() {
			locals += uint64(body.u32())
			body.valueType()
			if locals > MaxFunctionLocals && tooMany == nil {
				tooMany = fmt.Errorf("%w: a function declares more than %d locals", ErrInvalidModule, MaxFunctionLocals)
				body.err = errStop
			}
		})
		if body.err != nil && s.err == nil {
			s.err = body.err
		}
		shape.maxLocals = max(shape.maxLocals, locals)
	})
	return tooMany
}

// scanElement walks one element segment (the eight encodings of the
// WebAssembly 2.0 element section).
func scanElement(s *wasmReader) {
	flags := s.u32()
	if s.err != nil {
		return
	}
	if flags > 7 {
		s.fail("element segment flags %d", flags)
		return
	}
	if flags&1 == 0 { // active
		if flags&2 != 0 {
			s.u32() // table index
		}
		s.constExpr()
	}
	if flags&3 != 0 { // an element kind or reference type follows
		s.byte()
	}
	if flags&4 == 0 {
		s.each(1, "element function indices", func() { s.u32() })
	} else {
		s.each(2, "element expressions", func() { s.constExpr() })
	}
}

// scanData walks one data segment.
func scanData(s *wasmReader) {
	switch flags := s.u32(); flags {
	case 0:
		s.constExpr()
	case 1:
	case 2:
		s.u32() // memory index
		s.constExpr()
	default:
		if s.err == nil {
			s.fail("data segment flags %d", flags)
		}
		return
	}
	s.bytes(int(s.u32()))
}

// scanCustom walks the "name" section, which wazero decodes (for stack
// traces) into maps sized by its counts; other custom sections are opaque.
func scanCustom(s *wasmReader) {
	if s.name() != "name" || s.err != nil {
		return
	}
	for s.more() {
		id := s.byte()
		sub := &wasmReader{b: s.bytes(int(s.u32()))}
		switch id {
		case 1: // function names
			sub.each(2, "function names", func() { sub.u32(); sub.name() })
		case 2: // local names
			sub.each(2, "local name maps", func() {
				sub.u32()
				sub.each(2, "local names", func() { sub.u32(); sub.name() })
			})
		}
		if sub.err != nil && s.err == nil {
			s.err = sub.err
		}
	}
}

// errStop ends a walk early; the caller reports its own error.
var errStop = fmt.Errorf("stopped")

// wasmReader reads the binary format's integers, vectors and names; the
// first error sticks.
type wasmReader struct {
	b   []byte
	off int
	err error
}

func (r *wasmReader) more() bool { return r.err == nil && r.off < len(r.b) }

func (r *wasmReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *wasmReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail("truncated at byte %d", r.off)
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

// u32 reads an unsigned LEB128 value of at most 32 bits.
func (r *wasmReader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		b := r.byte()
		if r.err != nil {
			return 0
		}
		if shift == 28 && b&0x70 != 0 {
			r.fail("integer overflows 32 bits at byte %d", r.off)
			return 0
		}
		v |= uint32(b&0x7f) << shift
		if b&0x80 == 0 {
			return v
		}
	}
	r.fail("integer too long at byte %d", r.off)
	return 0
}

// skipLEB skips a signed or unsigned LEB128 value of at most maxBytes.
func (r *wasmReader) skipLEB(maxBytes int) {
	for i := 0; i < maxBytes; i++ {
		if r.byte()&0x80 == 0 || r.err != nil {
			return
		}
	}
	r.fail("integer too long at byte %d", r.off)
}

func (r *wasmReader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.fail("truncated: %d bytes needed at byte %d", n, r.off)
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *wasmReader) name() string { return string(r.bytes(int(r.u32()))) }

// each reads a vector count and calls f once per element. The count must
// be at most MaxVectorLen and fit the remaining bytes at minSize bytes per
// element, so that nothing sized by it can exceed a small multiple of the
// module's own size. It returns the count.
func (r *wasmReader) each(minSize int, what string, f func()) uint32 {
	n := r.u32()
	if r.err != nil {
		return 0
	}
	if n > MaxVectorLen {
		r.fail("%d %s (at most %d)", n, what, MaxVectorLen)
		return 0
	}
	if uint64(n)*uint64(minSize) > uint64(len(r.b)-r.off) {
		r.fail("%d %s do not fit in %d bytes", n, what, len(r.b)-r.off)
		return 0
	}
	for i := uint32(0); i < n && r.err == nil; i++ {
		f()
	}
	return n
}

func (r *wasmReader) valueType() {
	switch t := r.byte(); t {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
	default:
		if r.err == nil {
			r.fail("value type 0x%x", t)
		}
	}
}

func (r *wasmReader) valueTypes(what string) { r.each(1, what, r.valueType) }

// limits reads a memory's limits (flags 0..3: max present, shared).
func (r *wasmReader) limits() {
	flags := r.byte()
	if flags > 3 {
		r.fail("limit flags 0x%x", flags)
		return
	}
	r.u32()
	if flags&1 != 0 {
		r.u32()
	}
}

// constExpr skips a constant expression up to its end opcode, accepting
// the instructions wazero's decoder accepts there.
func (r *wasmReader) constExpr() {
	for i := 0; r.err == nil; i++ {
		if i > 64 {
			r.fail("constant expression too long")
			return
		}
		switch op := r.byte(); op {
		case 0x0b: // end
			return
		case 0x41: // i32.const
			r.skipLEB(5)
		case 0x42: // i64.const
			r.skipLEB(10)
		case 0x43: // f32.const
			r.bytes(4)
		case 0x44: // f64.const
			r.bytes(8)
		case 0x23, 0xd2: // global.get, ref.func
			r.u32()
		case 0xd0: // ref.null
			r.byte()
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended-const add, sub, mul
		case 0xfd: // v128.const
			if r.u32() != 12 && r.err == nil {
				r.fail("vector instruction in a constant expression")
				return
			}
			r.bytes(16)
		default:
			if r.err == nil {
				r.fail("opcode 0x%x in a constant expression", op)
			}
			return
		}
	}
}

func appendULEB(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}
