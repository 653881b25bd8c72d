package execute

import (
	"fmt"

	"github.com/hashicorp/go-hclog"
)

// Config configures a Runtime.
type Config struct {
	// CacheDir is the directory of wazero's on-disk compilation cache, so
	// that a restarted node loads compiled modules instead of compiling
	// them again. The Runtime uses a sub-directory named for the wazero
	// version and this package's compiler settings. It must be private to
	// this node: wazero trusts its contents. Empty means an in-memory cache
	// only.
	CacheDir string

	// CompileWorkers is how many goroutines compile the functions of one
	// module in parallel (1..64). More than one is faster (2 workers compile
	// a Go module ~30% faster on 2 cores) but moves compilation onto
	// wazero's goroutines, where a compiler panic cannot be recovered and
	// would end the process; 1 keeps it on the caller's goroutine, where
	// Deploy turns a panic into ErrInvalidModule.
	CompileWorkers int

	// Logger receives compile events at debug level; nil means no logging.
	Logger hclog.Logger
}

// DefaultConfig returns a Config with no on-disk cache and one compile
// worker.
func DefaultConfig() Config {
	return Config{CompileWorkers: 1}
}

// Validate checks the Config. Errors wrap ErrConfig.
func (c Config) Validate() error {
	if c.CompileWorkers < 1 || c.CompileWorkers > 64 {
		return fmt.Errorf("%w: compile workers %d (1..64)", ErrConfig, c.CompileWorkers)
	}
	return nil
}
