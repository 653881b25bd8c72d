//go:build contract

package integration

// contractTags builds the node binary of the multi-process tests with the
// OpenAPI contract check too, when this test binary has it: a node that
// breaks the contract answers 500, which fails the test that asked.
var contractTags = []string{"-tags", "contract"}
