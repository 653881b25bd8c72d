//go:build race

package execute_test

const raceEnabled = true
