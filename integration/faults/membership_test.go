package faults

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestMembership is a membership change during a partition: the group is
// split into halves and a random voter leaves gracefully; after the heal
// it starts again, the leader must add it back as a voter, and every
// checker must pass. (TestFaults runs leave-one alone; random schedules
// compose it with every other nemesis.)
func TestMembership(t *testing.T) {
	run(t, "TestMembership", func(*rand.Rand) []Step {
		return []Step{{Nemesis: Compose(Halves, LeaveOne), Hold: 4 * time.Second}}
	}, 0)
}
