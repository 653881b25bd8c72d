// Package tiny hand-assembles small WASI command modules (no compiler, no Go
// runtime), so that the per-call overhead of the platform can be measured
// apart from the start-up cost of a language runtime, and so that the
// misbehaving functions used by the limit tests are a few dozen bytes each.
//
// Every module exports "_start" and (where it has one) "memory", and imports
// only what it names from wasi_snapshot_preview1 — except "tinyclock", which
// imports env.host_time on purpose and must be refused by a runtime that
// offers no such host function.
//
// The modules:
//
//	tinyinc    stdin -> stdout with the last run of decimal digits incremented
//	           by one ({"value":100} -> {"value":101}, 99 -> 100); exit 2 if
//	           the input has no digit, exit 1 if it exceeds 65,518 bytes
//	echo       stdin -> stdout unchanged (same input limit)
//	loop       never returns
//	memhog     grows its memory 16 pages at a time until refused, then traps
//	flood      writes 32 KiB blocks to stdout forever
//	noisy      writes 1 MiB to stderr, then "ok\n" to stdout, exit 0
//	trap       writes "partial\n" to stdout, then executes unreachable
//	exit3      writes "failing\n" to stdout, then proc_exit(3)
//	tinyclock  calls env.host_time (a host clock no deterministic runtime offers)
//	sources    writes 32 raw bytes: the realtime clock and the monotonic clock
//	           (u64 little-endian nanoseconds each) and 16 bytes of random_get
package tiny

import "sort"

// Memory layout shared by the modules.
const (
	iovAddr   = 0  // one iovec: ptr at +0, len at +4
	countAddr = 8  // nread / nwritten
	spareAddr = 16 // one spare byte before the buffer (tinyinc's carry)
	bufAddr   = 17 // input buffer
	msgAddr   = 1024
	fillAddr  = 4096
	fillLen   = 32768
	pageSize  = 65536
)

// MaxInput is the largest stdin tinyinc and echo accept.
const MaxInput = pageSize - bufAddr - 1

type wasi struct{ fdRead, fdWrite, procExit uint32 }

func (b *builder) importWASI() wasi {
	abi := []byte{i32, i32, i32, i32}
	return wasi{
		fdRead:   b.importFunc("wasi_snapshot_preview1", "fd_read", abi, []byte{i32}),
		fdWrite:  b.importFunc("wasi_snapshot_preview1", "fd_write", abi, []byte{i32}),
		procExit: b.importFunc("wasi_snapshot_preview1", "proc_exit", []byte{i32}, nil),
	}
}

// writeAll defines write_all(fd, ptr, len): fd_write until len bytes are
// written; proc_exit(1) on an error or a zero-length write.
func (b *builder) writeAll(w wasi) uint32 {
	const fd, ptr, n, wrote = 0, 1, 2, 3
	return b.function("", []byte{i32, i32, i32}, nil, []byte{i32},
		block, loop,
		lget(n), i32Eqz, brIf(1),
		i32c(iovAddr), lget(ptr), store32(0),
		i32c(iovAddr), lget(n), store32(4),
		lget(fd), i32c(iovAddr), i32c(1), i32c(countAddr), call(w.fdWrite),
		ifThen, i32c(1), call(w.procExit), end,
		i32c(countAddr), load32(0), ltee(wrote),
		i32Eqz, ifThen, i32c(1), call(w.procExit), end,
		lget(ptr), lget(wrote), i32Add, lset(ptr),
		lget(n), lget(wrote), i32Sub, lset(n),
		br(0),
		end, end,
	)
}

// readAll defines read_all() -> len: fd_read stdin into the buffer until
// end of input; proc_exit(1) on an error or when the buffer fills up.
func (b *builder) readAll(w wasi) uint32 {
	const off, got = 0, 1
	const bufCap = MaxInput + 1
	return b.function("", nil, []byte{i32}, []byte{i32, i32},
		loop,
		i32c(iovAddr), i32c(bufAddr), lget(off), i32Add, store32(0),
		i32c(iovAddr), i32c(bufCap), lget(off), i32Sub, store32(4),
		i32c(0), i32c(iovAddr), i32c(1), i32c(countAddr), call(w.fdRead),
		ifThen, i32c(1), call(w.procExit), end,
		i32c(countAddr), load32(0), ltee(got),
		ifThen,
		lget(off), lget(got), i32Add, lset(off),
		lget(off), i32c(bufCap), i32GeU, ifThen, i32c(1), call(w.procExit), end,
		br(1),
		end,
		end,
		lget(off),
	)
}

// isDigitAt pushes 1 if the byte at bufAddr+i (local i) is an ASCII digit.
// bufAddr+i is computed with wrapping i32 arithmetic, so i = -1 reads the
// spare byte, which is always zero.
func isDigitAt(i uint32) []byte {
	return cat(lget(i), i32c(bufAddr), i32Add, load8u(0), i32c('0'), i32Sub, i32c(10), i32LtU)
}

func tinyinc() []byte {
	b := &builder{memPages: 1}
	w := b.importWASI()
	writeAll, readAll := b.writeAll(w), b.readAll(w)
	const n, i, start = 0, 1, 2
	b.function("_start", nil, nil, []byte{i32, i32, i32},
		call(readAll), lset(n),
		lget(n), i32c(1), i32Sub, lset(i),
		// Find the last digit.
		block, loop,
		lget(i), i32c(0), i32LtS, brIf(1),
		isDigitAt(i), brIf(1),
		lget(i), i32c(1), i32Sub, lset(i),
		br(0),
		end, end,
		lget(i), i32c(0), i32LtS, ifThen, i32c(2), call(w.procExit), end,
		// Turn trailing nines into zeros.
		block, loop,
		lget(i), i32c(0), i32LtS, brIf(1),
		lget(i), i32c(bufAddr), i32Add, load8u(0), i32c('9'), i32Ne, brIf(1),
		lget(i), i32c(bufAddr), i32Add, i32c('0'), store8(0),
		lget(i), i32c(1), i32Sub, lset(i),
		br(0),
		end, end,
		// Either bump the digit at i, or insert a '1' before the run.
		isDigitAt(i),
		ifThen,
		lget(i), i32c(bufAddr), i32Add,
		lget(i), i32c(bufAddr), i32Add, load8u(0), i32c(1), i32Add,
		store8(0),
		i32c(bufAddr), lset(start),
		elseThen,
		i32c(spareAddr), i32c(bufAddr), lget(i), i32c(1), i32Add, memoryCopy,
		lget(i), i32c(bufAddr), i32Add, i32c('1'), store8(0),
		i32c(spareAddr), lset(start),
		lget(n), i32c(1), i32Add, lset(n),
		end,
		i32c(1), lget(start), lget(n), call(writeAll),
	)
	return b.encode()
}

func echo() []byte {
	b := &builder{memPages: 1}
	w := b.importWASI()
	writeAll, readAll := b.writeAll(w), b.readAll(w)
	b.function("_start", nil, nil, []byte{i32},
		call(readAll), lset(0),
		i32c(1), i32c(bufAddr), lget(0), call(writeAll),
	)
	return b.encode()
}

func infiniteLoop() []byte {
	b := &builder{memPages: 1}
	b.function("_start", nil, nil, nil, loop, br(0), end)
	return b.encode()
}

func memhog() []byte {
	b := &builder{memPages: 1}
	b.function("_start", nil, nil, nil,
		loop,
		i32c(16), memoryGrow, i32c(-1), i32Eq, ifThen, unreachable, end,
		br(0),
		end,
	)
	return b.encode()
}

func flood() []byte {
	b := &builder{memPages: 1}
	w := b.importWASI()
	b.function("_start", nil, nil, nil,
		i32c(fillAddr), i32c('x'), i32c(fillLen), memoryFill,
		loop,
		i32c(iovAddr), i32c(fillAddr), store32(0),
		i32c(iovAddr), i32c(fillLen), store32(4),
		i32c(1), i32c(iovAddr), i32c(1), i32c(countAddr), call(w.fdWrite), drop,
		br(0),
		end,
	)
	return b.encode()
}

// NoisyStderrBytes is how much "noisy" writes to stderr.
const NoisyStderrBytes = 32 * fillLen

func noisy() []byte {
	b := &builder{memPages: 1, data: []dataSeg{{msgAddr, []byte("ok\n")}}}
	w := b.importWASI()
	writeAll := b.writeAll(w)
	b.function("_start", nil, nil, []byte{i32},
		i32c(fillAddr), i32c('e'), i32c(fillLen), memoryFill,
		i32c(NoisyStderrBytes/fillLen), lset(0),
		loop,
		i32c(2), i32c(fillAddr), i32c(fillLen), call(writeAll),
		lget(0), i32c(1), i32Sub, ltee(0),
		brIf(0),
		end,
		i32c(1), i32c(msgAddr), i32c(3), call(writeAll),
	)
	return b.encode()
}

func trap() []byte {
	msg := []byte("partial\n")
	b := &builder{memPages: 1, data: []dataSeg{{msgAddr, msg}}}
	w := b.importWASI()
	writeAll := b.writeAll(w)
	b.function("_start", nil, nil, nil,
		i32c(1), i32c(msgAddr), i32c(int32(len(msg))), call(writeAll),
		unreachable,
	)
	return b.encode()
}

func exit3() []byte {
	msg := []byte("failing\n")
	b := &builder{memPages: 1, data: []dataSeg{{msgAddr, msg}}}
	w := b.importWASI()
	writeAll := b.writeAll(w)
	b.function("_start", nil, nil, nil,
		i32c(1), i32c(msgAddr), i32c(int32(len(msg))), call(writeAll),
		i32c(3), call(w.procExit),
	)
	return b.encode()
}

func sources() []byte {
	const out = msgAddr
	b := &builder{memPages: 1}
	w := b.importWASI()
	clockTimeGet := b.importFunc("wasi_snapshot_preview1", "clock_time_get", []byte{i32, i64, i32}, []byte{i32})
	randomGet := b.importFunc("wasi_snapshot_preview1", "random_get", []byte{i32, i32}, []byte{i32})
	writeAll := b.writeAll(w)
	fail := cat(ifThen, i32c(1), call(w.procExit), end)
	b.function("_start", nil, nil, nil,
		i32c(0), i64c(1), i32c(out), call(clockTimeGet), fail,
		i32c(1), i64c(1), i32c(out+8), call(clockTimeGet), fail,
		i32c(out+16), i32c(16), call(randomGet), fail,
		i32c(1), i32c(out), i32c(32), call(writeAll),
	)
	return b.encode()
}

func tinyclock() []byte {
	b := &builder{memPages: 1}
	hostTime := b.importFunc("env", "host_time", nil, []byte{i64})
	b.function("_start", nil, nil, nil, call(hostTime), drop)
	return b.encode()
}

var generators = map[string]func() []byte{
	"tinyinc":   tinyinc,
	"echo":      echo,
	"loop":      infiniteLoop,
	"memhog":    memhog,
	"flood":     flood,
	"noisy":     noisy,
	"trap":      trap,
	"exit3":     exit3,
	"tinyclock": tinyclock,
	"sources":   sources,
}

// Names lists the modules this package emits, sorted.
func Names() []string {
	out := make([]string, 0, len(generators))
	for n := range generators {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Module returns the bytes of the named module; ok is false for an unknown
// name. The bytes are the same on every call and every machine.
func Module(name string) (code []byte, ok bool) {
	g, ok := generators[name]
	if !ok {
		return nil, false
	}
	return g(), true
}
