package function

import "fmt"

// UnverifiedPolicy says what a function's invocation does when its group
// cannot find a verifier: the election had a single candidate, or every
// node asked but one failed to run the request (a group of two whose
// verifier died). That one result then stands alone.
type UnverifiedPolicy uint8

// Policies. The zero value is the chapter's rule.
const (
	// UnverifiedAccept accepts the one result; the record and the
	// response mark it unverified (agreed, not verified; the record's
	// conflict names the nodes that failed).
	UnverifiedAccept UnverifiedPolicy = 0
	// UnverifiedRefuse refuses it: with a single candidate nothing runs
	// and the call fails; when the verifier failed the record says no
	// agreement.
	UnverifiedRefuse UnverifiedPolicy = 1
)

var policyNames = [...]string{UnverifiedAccept: "accept", UnverifiedRefuse: "refuse"}

// Valid reports whether p is one of the defined policies.
func (p UnverifiedPolicy) Valid() bool { return p <= UnverifiedRefuse }

// String returns "accept" or "refuse".
func (p UnverifiedPolicy) String() string {
	if !p.Valid() {
		return fmt.Sprintf("policy(%d)", uint8(p))
	}
	return policyNames[p]
}

// ParseUnverifiedPolicy reads "accept" or "refuse" ("" is accept).
func ParseUnverifiedPolicy(s string) (UnverifiedPolicy, error) {
	switch s {
	case "", "accept":
		return UnverifiedAccept, nil
	case "refuse":
		return UnverifiedRefuse, nil
	}
	return 0, fmt.Errorf("%w: unverified policy %q (accept or refuse)", ErrInvalidSpec, s)
}
