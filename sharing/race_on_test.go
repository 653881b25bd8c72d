//go:build race

package sharing_test

func init() { raceEnabled = true }
