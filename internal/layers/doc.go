// Package layers holds no code: its test enforces the import rules that keep
// qledger's packages in their floors, so a change that breaks one fails
// `make test` instead of drifting quietly. The rules, and why each holds, are
// written out in docs/DESIGN.md ("Layering"); the table in layers_test.go is
// their executable form. Change both together.
package layers
