//go:build !contract

package integration

// contractTags: this test binary has no contract check, nor do its nodes.
var contractTags []string
