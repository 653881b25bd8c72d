package client

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"qledger/sharing"
)

// verifiedShare is a share GetShare verified, with the item its records
// describe.
type verifiedShare struct {
	group int
	share *sharing.Share
	item  DataItem
}

// shareSet is the verified shares of one upload: their records agree on
// t, n, scheme and digest, and the shares on their split ID. Shares of
// different sets must never be recovered together.
type shareSet struct {
	// item is the lowest group's verified item.
	item    DataItem
	splitID [16]byte
	// groups ascend; shares[k] is group groups[k]'s share.
	groups []int
	shares []*sharing.Share
}

func (s *shareSet) String() string {
	return fmt.Sprintf("groups %v hold split %.8x (%s, t=%d of n=%d, digest %s)", s.groups, s.splitID, s.item.Scheme, s.item.Threshold, s.item.Shares, shortDigest(s.item.Digest))
}

func (s *shareSet) enough() bool { return len(s.shares) >= s.item.Threshold }

func shortDigest(d []byte) string {
	if d == nil {
		return "none"
	}
	return fmt.Sprintf("%.8x", d)
}

// partition sorts verified shares into sets of one upload each, the
// largest first (of equal ones, the one with the lowest group).
func partition(vs []verifiedShare) []*shareSet {
	sort.Slice(vs, func(a, b int) bool { return vs[a].group < vs[b].group })
	byKey := map[string]*shareSet{}
	var sets []*shareSet
	for _, v := range vs {
		key := fmt.Sprintf("%x|%s|%d|%d|%x", v.share.SplitID, v.item.Scheme, v.item.Threshold, v.item.Shares, v.item.Digest)
		s := byKey[key]
		if s == nil {
			s = &shareSet{item: v.item, splitID: v.share.SplitID}
			byKey[key] = s
			sets = append(sets, s)
		}
		s.groups = append(s.groups, v.group)
		s.shares = append(s.shares, v.share)
	}
	sort.SliceStable(sets, func(a, b int) bool { return len(sets[a].shares) > len(sets[b].shares) })
	return sets
}

// checkEnough fails unless some set holds at least its threshold t of
// shares: with ErrTooFewGroups when too few shares were verified at all,
// with ErrDisagree when enough were but no t of them are of one upload.
func checkEnough(dataID string, sets []*shareSet, failed map[int]string) error {
	if len(sets) == 0 {
		return fmt.Errorf("%w: no group returned a share of %s (%s)", ErrTooFewGroups, dataID, describeFailures(failed))
	}
	total, minT := 0, sets[0].item.Threshold
	for _, s := range sets {
		if s.enough() {
			return nil
		}
		total += len(s.shares)
		minT = min(minT, s.item.Threshold)
	}
	if len(sets) == 1 {
		return fmt.Errorf("%w: %d of the %d needed: groups %v answered; %s", ErrTooFewGroups, total, minT, sets[0].groups, describeFailures(failed))
	}
	if total < minT {
		return fmt.Errorf("%w: %d of the %d needed, and they disagree: %s; %s", ErrTooFewGroups, total, minT, describeSets(sets), describeFailures(failed))
	}
	return fmt.Errorf("%w: %s: no t of the %d verified shares are of one upload: %s; %s", ErrDisagree, dataID, total, describeSets(sets), describeFailures(failed))
}

func describeSets(sets []*shareSet) string {
	parts := make([]string, len(sets))
	for k, s := range sets {
		parts[k] = s.String()
	}
	return strings.Join(parts, "; ")
}

// noteOthers records in failed why the groups of the sets other than
// used were not used.
func noteOthers(sets []*shareSet, used *shareSet, failed map[int]string) {
	for _, s := range sets {
		if s == used {
			continue
		}
		for _, g := range s.groups {
			failed[g] = fmt.Sprintf("holds a share of another upload under the same ID (split %.8x, t=%d, digest %s), not the one of groups %v",
				s.splitID, s.item.Threshold, shortDigest(s.item.Digest), used.groups)
		}
	}
}

// RecoverAttempt is one set of groups whose shares GetData tried to
// recover from, and why that failed.
type RecoverAttempt struct {
	Groups []int
	Err    error
}

// RecoverError is GetData's error when enough shares were verified but no
// set of them recovered the data. errors.Is matches ErrRecover and every
// attempt's error (ErrDigest, sharing.ErrAuthentication, ...).
type RecoverError struct {
	DataID   string
	Attempts []RecoverAttempt
	// Failed says why the groups left out of every attempt were.
	Failed map[int]string
}

// maxListedAttempts bounds the attempts Error spells out.
const maxListedAttempts = 8

func (e *RecoverError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: %s: tried", ErrRecover, e.DataID)
	for k, a := range e.Attempts {
		if k == maxListedAttempts {
			fmt.Fprintf(&b, "; and %d more sets", len(e.Attempts)-k)
			break
		}
		sep := ";"
		if k == 0 {
			sep = ""
		}
		fmt.Fprintf(&b, "%s groups %v: %v", sep, a.Groups, a.Err)
	}
	if len(e.Failed) > 0 {
		fmt.Fprintf(&b, "; not used: %s", describeFailures(e.Failed))
	}
	return b.String()
}

// Unwrap returns ErrRecover and the attempts' errors.
func (e *RecoverError) Unwrap() []error {
	out := []error{ErrRecover}
	for _, a := range e.Attempts {
		out = append(out, a.Err)
	}
	return out
}

// setRecovery is the outcome of recovering one set.
type setRecovery struct {
	data []byte
	// used are the groups recovered from; nil if none was.
	used     []int
	attempts []RecoverAttempt
	// left says why groups of the set outside used were left out.
	left map[int]string
}

// recoverSet recovers the data from set s and checks it against the
// digest its records carry. It tries all the shares first, dropping any
// share sharing.Recover names as bad; then every t consecutive ones of
// those left (in index order, cyclically), so that one share that passes
// its own checks but spoils the recovery is got round. That is at most
// 2m+1 recoveries for m shares.
func recoverSet(dataID string, s *shareSet) setRecovery {
	out := setRecovery{left: map[int]string{}}
	t := s.item.Threshold
	try := func(pos []int) bool {
		shares := make([]*sharing.Share, len(pos))
		groups := make([]int, len(pos))
		for k, p := range pos {
			shares[k], groups[k] = s.shares[p], s.groups[p]
		}
		data, sum, err := sharing.Recover(shares)
		if err == nil && s.item.Digest != nil && !bytes.Equal(sum.Digest, s.item.Digest) {
			err = fmt.Errorf("%w: %s: recovered digest %s, recorded %s", ErrDigest, dataID, shortDigest(sum.Digest), shortDigest(s.item.Digest))
		}
		if err != nil {
			out.attempts = append(out.attempts, RecoverAttempt{Groups: groups, Err: err})
			return false
		}
		out.data, out.used = data, groups
		return true
	}
	live := make([]int, len(s.shares))
	for k := range live {
		live[k] = k
	}
	for len(live) >= t {
		if try(live) {
			out.noteLeft(s)
			return out
		}
		var se *sharing.ShareError
		last := out.attempts[len(out.attempts)-1].Err
		k := -1
		if errors.As(last, &se) {
			k = slices.IndexFunc(live, func(p int) bool { return s.shares[p].Index == se.Index })
		}
		if k < 0 {
			break
		}
		out.left[s.groups[live[k]]] = fmt.Sprintf("rejected in recovery: %v", last)
		live = append(live[:k:k], live[k+1:]...)
	}
	if len(live) > t {
		for off := range live {
			win := make([]int, t)
			for k := range win {
				win[k] = live[(off+k)%len(live)]
			}
			slices.Sort(win)
			if try(win) {
				out.noteLeft(s)
				return out
			}
		}
	}
	return out
}

// noteLeft says why the groups of s outside the recovery were left out.
func (r *setRecovery) noteLeft(s *shareSet) {
	for _, g := range s.groups {
		if _, done := r.left[g]; done || slices.Contains(r.used, g) {
			continue
		}
		r.left[g] = "left out: the recoveries with its share failed"
	}
}
