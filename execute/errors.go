package execute

import (
	"errors"

	"qledger/function"
)

// Deployment errors.
var (
	// ErrInvalidSpec means a Spec field holds a value that is not allowed
	// (also a module that needs more memory than its spec allows). It is
	// function.ErrInvalidSpec, so errors.Is works with either name.
	ErrInvalidSpec = function.ErrInvalidSpec
	// ErrCodeHash means the module bytes do not hash to the spec's
	// CodeHash; it is function.ErrCodeHash.
	ErrCodeHash = function.ErrCodeHash
	// ErrInvalidModule means the bytes are not a valid WebAssembly module
	// or not a WASI command (no "_start" of type () -> ()).
	ErrInvalidModule = errors.New("execute: invalid module")
	// ErrUnsupportedImport means the module imports something the sandbox
	// does not offer: anything outside wasi_snapshot_preview1, or a WASI
	// function with the wrong signature, or a memory.
	ErrUnsupportedImport = errors.New("execute: unsupported import")
)

// Invocation errors: the invocation did not produce a function outcome.
var (
	// ErrUnknownCode means no module with this code hash has been deployed
	// on this runtime.
	ErrUnknownCode = errors.New("execute: unknown code hash")
	// ErrInputTooLarge means the request payload exceeds MaxInputBytes.
	ErrInputTooLarge = errors.New("execute: input too large")
	// ErrCanceled means the caller's context ended the invocation; it says
	// nothing about the function.
	ErrCanceled = errors.New("execute: invocation canceled")
	// ErrInstantiate means the module could not be instantiated for a
	// reason other than the function's own behaviour (a link error the
	// deploy checks cannot see, such as an imported table or global).
	ErrInstantiate = errors.New("execute: instantiation failed")
	// ErrClosed means the Runtime has been closed.
	ErrClosed = errors.New("execute: runtime closed")
	// ErrConfig means a Config field is invalid.
	ErrConfig = errors.New("execute: invalid config")
)

// Outcome errors, returned by Result.Err for every outcome but OutcomeOK.
var (
	// ErrTrap means the module trapped (unreachable, out-of-bounds access,
	// division by zero, stack exhaustion, ...).
	ErrTrap = errors.New("execute: trap")
	// ErrTimeout means the function ran past its spec's Timeout.
	ErrTimeout = errors.New("execute: timeout")
	// ErrMemoryLimit means the function asked for more memory pages than
	// its spec's MemoryPages.
	ErrMemoryLimit = errors.New("execute: memory limit exceeded")
	// ErrOutputLimit means the function wrote more than its spec's
	// MaxOutputBytes to stdout.
	ErrOutputLimit = errors.New("execute: output limit exceeded")
	// ErrBadExit means the function exited with a non-zero status.
	ErrBadExit = errors.New("execute: non-zero exit status")
)
