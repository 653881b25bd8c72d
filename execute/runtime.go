package execute

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"qledger/function"
)

// cacheSubdir names the compilation cache directory inside Config.CacheDir.
// wazero's cache key does not cover the close-on-context-done setting, so
// the directory must never be shared with a runtime configured otherwise;
// the name says what it holds.
const cacheSubdir = "wazero-v1.12.0-compiler-closeondone"

const wasiModule = wasi_snapshot_preview1.ModuleName

// Runtime compiles and runs functions. It is safe for concurrent use: any
// number of Deploy and Invoke calls may run at once, and each Invoke runs
// in a fresh module instance.
type Runtime struct {
	cfg   Config
	log   hclog.Logger
	wz    wazero.Runtime
	cache wazero.CompilationCache
	wasi  map[string]signature // what the sandbox offers to import
	base  wazero.ModuleConfig

	stop       context.Context // canceled by Close, aborting running calls
	stopCancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	active  sync.WaitGroup // Deploy and Invoke calls in progress
	modules map[[function.CodeHashSize]byte]*module

	running atomic.Int64 // calls in their function's _start
}

type signature struct{ params, results []api.ValueType }

// module is one compiled module. ready is closed when compilation ended;
// after that compiled, minPages and err are read-only.
type module struct {
	ready    chan struct{}
	compiled wazero.CompiledModule
	minPages uint32 // the largest initial size among its memories
	took     time.Duration
	err      error
}

// New creates a Runtime with wazero's compiler engine, the compilation
// cache of cfg and a wasi_snapshot_preview1 host module.
func New(cfg Config) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if goruntime.GOARCH != "amd64" && goruntime.GOARCH != "arm64" {
		return nil, fmt.Errorf("%w: wazero's compiler does not support %s/%s", ErrConfig, goruntime.GOOS, goruntime.GOARCH)
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	var cache wazero.CompilationCache
	if cfg.CacheDir != "" {
		dir := filepath.Join(cfg.CacheDir, cacheSubdir)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("%w: cache dir: %v", ErrConfig, err)
		}
		c, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			return nil, fmt.Errorf("%w: cache dir: %v", ErrConfig, err)
		}
		cache = c
	} else {
		cache = wazero.NewCompilationCache()
	}
	ctx := context.Background()
	wz := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(cache).
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(function.MaxMemoryPages).
		WithDebugInfoEnabled(false))
	host, err := wasi_snapshot_preview1.Instantiate(ctx, wz)
	if err != nil {
		_ = wz.Close(ctx)
		_ = cache.Close(ctx)
		return nil, fmt.Errorf("execute: wasi host module: %w", err)
	}
	offered := map[string]signature{}
	if m, ok := host.(api.Module); ok {
		for name, def := range m.ExportedFunctionDefinitions() {
			offered[name] = signature{def.ParamTypes(), def.ResultTypes()}
		}
	}
	stop, stopCancel := context.WithCancel(context.Background())
	return &Runtime{
		cfg:   cfg,
		log:   log.Named("execute"),
		wz:    wz,
		cache: cache,
		wasi:  offered,
		// No name (so instances never collide), no start functions (Invoke
		// calls _start itself), no file system, no environment, and a
		// yield that does nothing.
		base: wazero.NewModuleConfig().
			WithName("").
			WithStartFunctions().
			WithOsyield(func() {}),
		stop:       stop,
		stopCancel: stopCancel,
		modules:    map[[function.CodeHashSize]byte]*module{},
	}, nil
}

// DeployInfo reports what Deploy did.
type DeployInfo struct {
	CodeHash [function.CodeHashSize]byte
	// Compiled is true if this call compiled the module (from the on-disk
	// cache or from scratch) and false if it was already loaded.
	Compiled bool
	// CompileTime is how long loading the module took, for the call that
	// loaded it, else zero.
	CompileTime time.Duration
}

// Deploy validates d and makes its module ready for Invoke. The module is
// compiled once per Runtime and keyed by its code hash: concurrent and
// repeated deploys of the same code wait for, or reuse, that one
// compilation. Deploy refuses modules that are not valid WASI commands
// (ErrInvalidModule), that import anything the sandbox does not offer
// (ErrUnsupportedImport) or whose initial memory exceeds the spec's page
// limit (ErrInvalidSpec). Any error means nothing was deployed.
func (r *Runtime) Deploy(ctx context.Context, d function.Deployment) (DeployInfo, error) {
	if err := d.Validate(); err != nil {
		return DeployInfo{}, err
	}
	m, compiled, err := r.load(ctx, d.Spec.CodeHash, d.Code)
	if err != nil {
		return DeployInfo{}, err
	}
	if m.minPages > d.Spec.MemoryPages {
		return DeployInfo{}, fmt.Errorf("%w: module starts with %d memory pages, spec allows %d", ErrInvalidSpec, m.minPages, d.Spec.MemoryPages)
	}
	info := DeployInfo{CodeHash: d.Spec.CodeHash, Compiled: compiled}
	if compiled {
		info.CompileTime = m.took
	}
	return info, nil
}

// Deployed reports whether a module with this code hash is ready.
func (r *Runtime) Deployed(codeHash [function.CodeHashSize]byte) bool {
	r.mu.Lock()
	m, ok := r.modules[codeHash]
	r.mu.Unlock()
	if !ok {
		return false
	}
	select {
	case <-m.ready:
		return m.err == nil
	default:
		return false
	}
}

// load returns the compiled module for hash, compiling code if this is the
// first request for it. compiled says whether this call did the work.
func (r *Runtime) load(ctx context.Context, hash [function.CodeHashSize]byte, code []byte) (m *module, compiled bool, err error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, false, ErrClosed
	}
	m, ok := r.modules[hash]
	if !ok {
		m = &module{ready: make(chan struct{})}
		r.modules[hash] = m
	}
	r.active.Add(1)
	r.mu.Unlock()
	defer r.active.Done()

	if ok {
		select {
		case <-m.ready:
			return m, false, m.err
		case <-ctx.Done():
			return nil, false, fmt.Errorf("%w: %w", ErrCanceled, context.Cause(ctx))
		}
	}
	start := time.Now()
	m.compiled, m.minPages, m.err = r.compile(ctx, code)
	m.took = time.Since(start)
	if m.err != nil {
		r.mu.Lock()
		delete(r.modules, hash)
		r.mu.Unlock()
	} else {
		r.log.Debug("module compiled", "code_hash", hex.EncodeToString(hash[:]), "bytes", len(code), "took", m.took)
	}
	close(m.ready)
	return m, true, m.err
}

// compile checks code against the static limits (scanModule), compiles it
// and checks that it is a WASI command importing only what the sandbox
// offers.
func (r *Runtime) compile(ctx context.Context, code []byte) (wazero.CompiledModule, uint32, error) {
	// Check the static limits and the imports before spending a compilation
	// on the module.
	shape, err := scanModule(code)
	if err != nil {
		return nil, 0, err
	}
	for _, im := range shape.imports {
		if _, ok := r.wasi[im.name]; im.module != wasiModule || !ok {
			return nil, 0, fmt.Errorf("%w: function %s.%s (the sandbox offers only %s)", ErrUnsupportedImport, im.module, im.name, wasiModule)
		}
	}
	cm, err := r.compileModule(ctx, shape.code)
	if err != nil {
		return nil, 0, err
	}
	minPages, err := r.check(cm)
	if err != nil {
		_ = cm.Close(ctx)
		return nil, 0, err
	}
	return cm, minPages, nil
}

// compileModule runs wazero's compiler. wazero v1.12.0's validator can
// panic on malformed function bodies (FuzzDeployInvoke found an index out
// of range); the panic is turned into ErrInvalidModule. Only panics on this
// goroutine can be caught: with CompileWorkers > 1, functions compile on
// wazero's own goroutines (after validation), where a compiler panic would
// end the process.
func (r *Runtime) compileModule(ctx context.Context, code []byte) (cm wazero.CompiledModule, err error) {
	defer func() {
		if p := recover(); p != nil {
			cm, err = nil, fmt.Errorf("%w: the compiler failed: %v", ErrInvalidModule, p)
		}
	}()
	cctx := experimental.WithCompilationWorkers(ctx, r.cfg.CompileWorkers)
	cm, err = r.wz.CompileModule(cctx, code)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidModule, err)
	}
	return cm, nil
}

func (r *Runtime) check(cm wazero.CompiledModule) (uint32, error) {
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		sig, ok := r.wasi[name]
		if mod != wasiModule || !ok {
			return 0, fmt.Errorf("%w: function %s.%s (the sandbox offers only %s)", ErrUnsupportedImport, mod, name, wasiModule)
		}
		if !slices.Equal(sig.params, f.ParamTypes()) || !slices.Equal(sig.results, f.ResultTypes()) {
			return 0, fmt.Errorf("%w: function %s.%s has the wrong signature", ErrUnsupportedImport, mod, name)
		}
	}
	for _, m := range cm.ImportedMemories() {
		mod, name, _ := m.Import()
		return 0, fmt.Errorf("%w: memory %s.%s", ErrUnsupportedImport, mod, name)
	}
	start, ok := cm.ExportedFunctions()["_start"]
	if !ok {
		return 0, fmt.Errorf("%w: no _start export (not a WASI command)", ErrInvalidModule)
	}
	if len(start.ParamTypes()) != 0 || len(start.ResultTypes()) != 0 {
		return 0, fmt.Errorf("%w: _start must take and return nothing", ErrInvalidModule)
	}
	var minPages uint32
	for _, m := range cm.ExportedMemories() {
		minPages = max(minPages, m.Min())
	}
	return minPages, nil
}

// Invoke runs the function described by spec on input, in a fresh instance,
// under spec's limits. The module must have been deployed on this Runtime
// (ErrUnknownCode otherwise); spec supplies the limits, so the same code
// may run under different specs.
//
// The call sees stdin = input, args = [spec.Name], no environment, no file
// system, and a clock and random source derived from requestID alone, so
// executing the same (code, spec, requestID, input) anywhere gives the same
// Result.Hash — except for OutcomeTimeout, which depends on machine speed.
//
// The returned error is nil whenever the function ran: its failures are
// outcomes in the Result (see Result.Err). A non-nil error means there is
// no outcome: bad arguments, unknown code, ErrCanceled when ctx ended the
// call, or ErrClosed.
func (r *Runtime) Invoke(ctx context.Context, spec function.Spec, requestID [32]byte, input []byte) (Result, error) {
	if err := spec.Validate(); err != nil {
		return Result{}, err
	}
	if len(input) > function.MaxInputBytes {
		return Result{}, fmt.Errorf("%w: %d bytes (at most %d)", ErrInputTooLarge, len(input), function.MaxInputBytes)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return Result{}, ErrClosed
	}
	m, ok := r.modules[spec.CodeHash]
	if !ok {
		r.mu.Unlock()
		return Result{}, fmt.Errorf("%w: %s", ErrUnknownCode, spec.CodeHashString())
	}
	r.active.Add(1)
	r.mu.Unlock()
	defer r.active.Done()

	select {
	case <-m.ready:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("%w: %w", ErrCanceled, context.Cause(ctx))
	}
	if m.err != nil {
		return Result{}, fmt.Errorf("%w: %s did not compile: %w", ErrUnknownCode, spec.CodeHashString(), m.err)
	}
	return r.run(ctx, m, spec, requestID, input)
}

func (r *Runtime) run(ctx context.Context, m *module, spec function.Spec, requestID [32]byte, input []byte) (Result, error) {
	timed, cancelTimeout := context.WithTimeout(ctx, spec.Timeout)
	defer cancelTimeout()
	callCtx, abort := context.WithCancelCause(timed)
	defer abort(nil)
	stopWatch := context.AfterFunc(r.stop, func() { abort(ErrClosed) })
	defer stopWatch()

	// A limit hit freezes stderr and aborts the call; the guest may run on
	// for a moment until wazero notices, and nothing it does then counts.
	stderr := &stderrLog{max: int(spec.MaxStderrBytes)}
	guard := &memoryGuard{limit: uint64(spec.MemoryPages) * function.PageSize, onRefuse: func() { stderr.freeze(); abort(ErrMemoryLimit) }}
	stdout := &stdoutBuffer{max: int(spec.MaxOutputBytes), onOverflow: func() { stderr.freeze(); abort(ErrOutputLimit) }}
	clock := newVirtualClock(requestID)
	random, err := newRandom(requestID)
	if err != nil {
		return Result{}, err
	}
	cfg := r.base.
		WithArgs(spec.Name).
		WithStdin(bytes.NewReader(input)).
		WithStdout(stdout).
		WithStderr(stderr).
		WithWalltime(clock.walltime, clockResolution).
		WithNanotime(clock.nanotime, clockResolution).
		WithNanosleep(clock.nanosleep).
		WithRandSource(random)

	start := time.Now()
	var callErr error
	var instantiated bool
	if m.minPages > spec.MemoryPages {
		guard.refused, guard.asked = true, uint64(m.minPages)*function.PageSize
	} else {
		instantiated, callErr = r.call(experimental.WithMemoryAllocator(callCtx, guard), m.compiled, cfg, guard)
	}
	res := Result{Duration: time.Since(start), Stderr: stderr.buf, StderrTruncated: stderr.truncated}

	cause := context.Cause(callCtx)
	var exit *sys.ExitError
	switch {
	case guard.refused:
		res.Outcome = function.OutcomeMemoryLimit
		res.Detail = fmt.Sprintf("asked for %d pages, limit %d", (guard.asked+function.PageSize-1)/function.PageSize, spec.MemoryPages)
	case stdout.overflowed:
		res.Outcome = function.OutcomeOutputLimit
		res.Detail = fmt.Sprintf("stdout over %d bytes", spec.MaxOutputBytes)
	case callErr == nil:
		res.Outcome, res.Stdout = function.OutcomeOK, stdout.buf
	case errors.Is(cause, ErrClosed):
		return Result{}, ErrClosed
	case ctx.Err() != nil:
		return Result{}, fmt.Errorf("%w: %w", ErrCanceled, context.Cause(ctx))
	case errors.Is(cause, context.DeadlineExceeded):
		res.Outcome = function.OutcomeTimeout
		res.Detail = fmt.Sprintf("ran past %s", spec.Timeout)
	case !instantiated:
		res.Outcome = function.OutcomeTrap
		res.Detail = "instantiation failed: " + callErr.Error()
	case errors.As(callErr, &exit) && exit.ExitCode() == 0:
		res.Outcome, res.Stdout = function.OutcomeOK, stdout.buf
	case errors.As(callErr, &exit):
		res.Outcome, res.ExitCode, res.Stdout = function.OutcomeBadExit, exit.ExitCode(), stdout.buf
	default:
		res.Outcome = function.OutcomeTrap
		res.Detail = callErr.Error()
	}
	if res.Stdout == nil && (res.Outcome == function.OutcomeOK || res.Outcome == function.OutcomeBadExit) {
		res.Stdout = []byte{}
	}
	res.Hash = function.ResultHash(res.Outcome, res.ExitCode, res.Stdout)
	return res, nil
}

// call instantiates the module and runs _start. instantiated reports
// whether the instance came up, so that callers can tell a failed
// instantiation from a failed run.
func (r *Runtime) call(ctx context.Context, cm wazero.CompiledModule, cfg wazero.ModuleConfig, guard *memoryGuard) (instantiated bool, err error) {
	// wazero recovers panics inside calls itself; this covers
	// instantiation. A panic is reported as a failed instantiation (trap).
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("wazero panicked: %v", p)
		}
	}()
	mod, err := r.wz.InstantiateModule(ctx, cm, cfg)
	if err != nil {
		return false, err
	}
	defer func() {
		mod.Close(context.Background())
		// The call is over (wazero runs the function on this goroutine):
		// nothing uses the instance's memory any more.
		guard.recycle()
	}()
	if guard.refused {
		// A memory started above the limit (possible only for a memory
		// that is not exported): do not run the function.
		return true, nil
	}
	start := mod.ExportedFunction("_start")
	if start == nil {
		return true, fmt.Errorf("%w: no _start", ErrInvalidModule)
	}
	r.running.Add(1)
	defer r.running.Add(-1)
	_, err = start.Call(ctx)
	return true, err
}

// Running returns how many calls are running their function's code now:
// instantiated and inside _start. Safe for concurrent use.
func (r *Runtime) Running() int { return int(r.running.Load()) }

// Close aborts running calls (they return ErrClosed), waits for them and
// for compilations in progress, and releases the wazero runtime and its
// compiled code. The on-disk cache stays for the next Runtime. Close is
// idempotent.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.stopCancel()
	r.active.Wait()
	ctx := context.Background()
	err := r.wz.Close(ctx)
	if cerr := r.cache.Close(ctx); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("execute: close: %w", err)
	}
	return nil
}
