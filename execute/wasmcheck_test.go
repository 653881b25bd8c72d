package execute

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"qledger/function"
)

// Hand-assembled modules for the static checks.

func sec(id byte, body ...byte) []byte {
	return append(append([]byte{id}, appendULEB(nil, uint32(len(body)))...), body...)
}

func wasmModule(sections ...[]byte) []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		out = append(out, s...)
	}
	return out
}

var (
	typeVoid  = sec(1, 1, 0x60, 0, 0)                                  // type 0: () -> ()
	funcs1    = sec(3, 1, 0)                                           // one function of type 0
	exportRun = sec(7, 1, 6, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00) // export _start
)

// localsModule: _start declares n i32 locals.
func localsModule(n uint32) []byte {
	body := append([]byte{1}, appendULEB(nil, n)...)
	body = append(body, 0x7f, 0x0b)
	code := append([]byte{1}, appendULEB(nil, uint32(len(body)))...)
	return wasmModule(typeVoid, funcs1, exportRun, sec(10, append(code, body...)...))
}

func TestScanLocals(t *testing.T) {
	if _, err := scanModule(localsModule(MaxFunctionLocals)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []uint32{MaxFunctionLocals + 1, 1 << 31} {
		if _, err := scanModule(localsModule(n)); !errors.Is(err, ErrInvalidModule) || !strings.Contains(err.Error(), "locals") {
			t.Fatalf("%d locals: %v", n, err)
		}
	}
}

func TestScanImports(t *testing.T) {
	imp := func(kind byte, desc ...byte) []byte {
		body := []byte{1, 3, 'e', 'n', 'v', 1, 'x', kind}
		return wasmModule(sec(2, append(body, desc...)...))
	}
	for kind, desc := range map[byte][]byte{1: {0x70, 0, 1}, 2: {0, 1}, 3: {0x7f, 0}} {
		if _, err := scanModule(imp(kind, desc...)); !errors.Is(err, ErrUnsupportedImport) {
			t.Errorf("import kind %d: %v", kind, err)
		}
	}
	shape, err := scanModule(imp(0, 0))
	if err != nil || len(shape.imports) != 1 || shape.imports[0] != (importRef{"env", "x"}) {
		t.Fatalf("function import: %+v %v", shape, err)
	}
}

func TestScanMalformed(t *testing.T) {
	cases := map[string][]byte{
		"empty":             nil,
		"bad magic":         []byte("\x00wasm\x01\x00\x00"),
		"version 2":         []byte("\x00asm\x02\x00\x00\x00"),
		"section past end":  append([]byte("\x00asm\x01\x00\x00\x00"), 1, 10, 0),
		"LEB overflow":      append([]byte("\x00asm\x01\x00\x00\x00"), 1, 0xff, 0xff, 0xff, 0xff, 0x7f),
		"LEB too long":      append([]byte("\x00asm\x01\x00\x00\x00"), 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00),
		"truncated import":  wasmModule(sec(2, 1, 3, 'e', 'n')),
		"truncated locals":  wasmModule(sec(10, 1, 5, 1, 0xff)),
		"table flags":       wasmModule(sec(4, 1, 0x70, 0x07, 0)),
		"table type":        wasmModule(sec(4, 1, 0x7f, 0, 0)),
		"trailing in table": wasmModule(sec(4, 1, 0x70, 0, 1, 9)),
		// Counts wazero would size allocations by.
		"2^28 globals":        wasmModule(sec(6, 0xff, 0xff, 0xff, 0x7f, 0x7f, 0, 0x0b)),
		"globals past end":    wasmModule(sec(6, 0x80, 0x01, 0x7f, 0, 0x0b)),
		"4 GiB data segment":  wasmModule(sec(11, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f)),
		"2^32 type params":    wasmModule(sec(1, 1, 0x60, 0xff, 0xff, 0xff, 0xff, 0x0f, 0)),
		"huge name map":       wasmModule(sec(0, append([]byte{4, 'n', 'a', 'm', 'e', 1, 5}, 0xff, 0xff, 0xff, 0xff, 0x0f)...)),
		"element vector":      wasmModule(sec(9, 1, 1, 0, 0xff, 0xff, 0xff, 0x7f)),
		"two memories":        wasmModule(sec(5, 2, 0, 1, 0, 1)),
		"tag section":         wasmModule(sec(13, 0)),
		"bad const expr":      wasmModule(sec(6, 1, 0x7f, 0, 0x20, 0, 0x0b)),
		"bad value type":      wasmModule(sec(1, 1, 0x60, 1, 0x40, 0)),
		"bad data flags":      wasmModule(sec(11, 1, 7)),
		"bad element flags":   wasmModule(sec(9, 1, 9)),
		"trailing in section": wasmModule(sec(3, 1, 0, 0)),
	}
	for name, code := range cases {
		if _, err := scanModule(code); !errors.Is(err, ErrInvalidModule) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A module with one of every section the walk reads passes it unchanged.
func TestScanWellFormed(t *testing.T) {
	code := wasmModule(
		typeVoid,
		sec(2, 1, 1, 'm', 1, 'f', 0, 0), // import m.f: type 0
		funcs1,
		sec(4, 1, 0x70, 1, 1, 1),             // table 1..1
		sec(5, 1, 1, 1, 2),                   // memory 1..2
		sec(6, 1, 0x7f, 0, 0x41, 0x2a, 0x0b), // global i32 = 42
		exportRun,                            // export _start
		sec(8, 1),                            // start: function 1
		sec(9, 1, 0, 0x41, 0, 0x0b, 1, 1),    // elem: table[0] = [f1]
		sec(12, 1),                           // data count 1
		sec(10, 1, 4, 1, 2, 0x7f, 0x0b),      // body: 2 i32 locals
		sec(11, 1, 0, 0x41, 0, 0x0b, 2, 'h', 'i'),                        // data: memory[0] = "hi"
		sec(0, 4, 'n', 'a', 'm', 'e', 1, 4, 1, 1, 1, 'f', 2, 3, 1, 1, 0), // names
	)
	s, err := scanModule(code)
	if err != nil {
		t.Fatal(err)
	}
	if string(s.code) != string(code) || s.maxLocals != 2 || s.tables != 1 || len(s.imports) != 1 {
		t.Fatalf("shape %+v", s)
	}
}

func TestScanTableLimits(t *testing.T) {
	table := func(flags byte, min, max uint32) []byte {
		b := []byte{0x70, flags}
		b = appendULEB(b, min)
		if flags == 1 {
			b = appendULEB(b, max)
		}
		return b
	}
	many := []byte{MaxTables + 1}
	for i := 0; i <= MaxTables; i++ {
		many = append(many, table(1, 0, 0)...)
	}
	two := append([]byte{2}, append(table(1, 0, MaxTableElements), table(0, 1, 0)...)...)
	for name, code := range map[string][]byte{
		"too many tables":     wasmModule(sec(4, many...)),
		"too many elements":   wasmModule(sec(4, append([]byte{1}, table(1, 0, MaxTableElements+1)...)...)),
		"too large initially": wasmModule(sec(4, append([]byte{1}, table(0, MaxTableElements+1, 0)...)...)),
		"sum too large":       wasmModule(sec(4, two...)),
	} {
		if _, err := scanModule(code); !errors.Is(err, ErrInvalidModule) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A table with a maximum is kept as it is; one without gets max = min.
	withMax := wasmModule(sec(4, append([]byte{1}, table(1, 2, 9)...)...))
	if s, err := scanModule(withMax); err != nil || string(s.code) != string(withMax) {
		t.Fatalf("table with a maximum changed: %v", err)
	}
	noMax := wasmModule(typeVoid, sec(4, append([]byte{1}, table(0, 3, 0)...)...), funcs1)
	s, err := scanModule(noMax)
	want := wasmModule(typeVoid, sec(4, append([]byte{1}, table(1, 3, 3)...)...), funcs1)
	if err != nil || string(s.code) != string(want) {
		t.Fatalf("rewrite:\n got %x\nwant %x (%v)", s.code, want, err)
	}
}

// TestTableGrowIsRefused deploys a module whose table declares no maximum
// and whose _start asks table.grow for a billion entries — without the
// rewrite, wazero would try to allocate 8 GB. The grow must fail (-1), and
// _start then returns normally.
func TestTableGrowIsRefused(t *testing.T) {
	body := []byte{
		0,          // no locals
		0xd0, 0x70, // ref.null func
		0x41, 0x80, 0x94, 0xeb, 0xdc, 0x03, // i32.const 1_000_000_000
		0xfc, 0x0f, 0x00, // table.grow 0
		0x41, 0x7f, // i32.const -1
		0x47,             // i32.ne
		0x04, 0x40, 0x00, // if: unreachable (the grow succeeded)
		0x0b, // end if
		0x0b, // end function
	}
	code := wasmModule(typeVoid, funcs1,
		sec(4, 1, 0x70, 0x00, 1), // one funcref table, min 1, no max
		exportRun,
		sec(10, append([]byte{1, byte(len(body))}, body...)...))
	rt, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	spec := function.DefaultSpec("tablegrow", "1", code)
	spec.Timeout = 5 * time.Second
	if _, err := rt.Deploy(context.Background(), function.Deployment{Spec: spec, Code: code}); err != nil {
		t.Fatal(err)
	}
	res, err := rt.Invoke(context.Background(), spec, sha256.Sum256(nil), nil)
	if err != nil || !res.OK() {
		t.Fatalf("%v %v (%s)", res.Outcome, err, res.Detail)
	}
}
