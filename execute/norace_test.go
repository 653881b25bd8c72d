//go:build !race

package execute_test

const raceEnabled = false
