package execute_test

import (
	"errors"
	"testing"

	"qledger/execute"
)

func TestConfigValidate(t *testing.T) {
	if err := execute.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, w := range []int{0, -1, 65} {
		c := execute.DefaultConfig()
		c.CompileWorkers = w
		if err := c.Validate(); !errors.Is(err, execute.ErrConfig) {
			t.Errorf("workers %d: %v", w, err)
		}
		if _, err := execute.New(c); !errors.Is(err, execute.ErrConfig) {
			t.Errorf("New with workers %d: %v", w, err)
		}
	}
}
