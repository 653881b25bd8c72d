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

// verifiedShare is a share GetShare verified, or one spooled to a file
// and verified by the same rules, with the item its records describe.
// Its index is its group.
type verifiedShare struct {
	group   int
	splitID [16]byte
	// share is the share in memory; nil if it is in file.
	share *sharing.Share
	file  string
	item  DataItem
}

// shareSet is the verified shares of one upload: their records agree on
// t, n, scheme and digest, and the shares on their split ID. Shares of
// different sets must never be recovered together.
type shareSet struct {
	// item is the lowest group's verified item.
	item    DataItem
	splitID [16]byte
	// groups ascend; shares[k] (or files[k], when spooled) is group
	// groups[k]'s share.
	groups []int
	shares []*sharing.Share
	files  []string
}

func (s *shareSet) String() string {
	return fmt.Sprintf("groups %v hold split %.8x (%s, t=%d of n=%d, digest %s)", s.groups, s.splitID, s.item.Scheme, s.item.Threshold, s.item.Shares, shortDigest(s.item.Digest))
}

func (s *shareSet) enough() bool { return len(s.groups) >= s.item.Threshold }

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
		key := fmt.Sprintf("%x|%s|%d|%d|%x", v.splitID, v.item.Scheme, v.item.Threshold, v.item.Shares, v.item.Digest)
		s := byKey[key]
		if s == nil {
			s = &shareSet{item: v.item, splitID: v.splitID}
			byKey[key] = s
			sets = append(sets, s)
		}
		s.groups = append(s.groups, v.group)
		s.shares = append(s.shares, v.share)
		s.files = append(s.files, v.file)
	}
	sort.SliceStable(sets, func(a, b int) bool { return len(sets[a].groups) > len(sets[b].groups) })
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
		total += len(s.groups)
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

// RecoverAttempt is one set of groups whose shares GetData or GetDataTo
// tried to recover from, and why that failed.
type RecoverAttempt struct {
	Groups []int
	Err    error
}

// RecoverError is GetData's and GetDataTo's error when enough shares
// were verified but no set of them recovered the data. errors.Is matches
// ErrRecover and every attempt's error (ErrDigest,
// sharing.ErrAuthentication, ErrOutputWritten, ...).
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

// recoverer makes recovery attempts from the shares of one set.
type recoverer interface {
	// reads returns the positions, of the ascending positions pos, whose
	// shares a recovery from pos reads.
	reads(pos []int) []int
	// recover recovers from the set's shares at positions pos, which
	// reads returned.
	recover(pos []int) (sharing.Summary, error)
	// discard takes back what a failed attempt produced. An error means
	// that no further attempt may be made.
	discard() error
}

// memRecoverer recovers from shares in memory and keeps the data of the
// last attempt.
type memRecoverer struct {
	set  *shareSet
	data []byte
}

// reads is pos: sharing.Recover checks every share it is given.
func (m *memRecoverer) reads(pos []int) []int { return pos }

func (m *memRecoverer) recover(pos []int) (sharing.Summary, error) {
	shares := make([]*sharing.Share, len(pos))
	for k, p := range pos {
		shares[k] = m.set.shares[p]
	}
	data, sum, err := sharing.Recover(shares)
	m.data = data
	return sum, err
}

func (m *memRecoverer) discard() error {
	m.data = nil
	return nil
}

// recoverSets recovers from the first set with enough shares that
// recovers (see GetData), trying the sets in order with recoverers made
// by newRecoverer. On success it fills in rep's Used, Item, DigestChecked
// and Length and notes in rep.Failed why the other groups were not used;
// otherwise it returns a *RecoverError naming every set tried.
func recoverSets(dataID string, sets []*shareSet, rep *GetReport, newRecoverer func(*shareSet) recoverer) error {
	failed := rep.Failed
	var tried []RecoverAttempt
	left := map[int]string{}
	for _, s := range sets {
		if !s.enough() {
			continue
		}
		r := recoverSet(dataID, s, newRecoverer(s))
		tried = append(tried, r.attempts...)
		for g, why := range r.left {
			left[g] = why
		}
		if r.used != nil {
			rep.Used, rep.Item, rep.DigestChecked, rep.Length = r.used, s.item, s.item.Digest != nil, r.sum.Length
			noteOthers(sets, s, failed)
			for g, why := range r.left {
				failed[g] = why
			}
			return nil
		}
		if r.stopped {
			break
		}
	}
	for _, s := range sets {
		for _, g := range s.groups {
			if why, ok := left[g]; ok {
				failed[g] = why
			} else if !s.enough() {
				failed[g] = fmt.Sprintf("holds a share of an upload with too few shares to try (%s)", s)
			}
		}
	}
	return &RecoverError{DataID: dataID, Attempts: tried, Failed: failed}
}

// setRecovery is the outcome of recovering one set.
type setRecovery struct {
	sum sharing.Summary
	// used are the groups recovered from; nil if none was.
	used     []int
	attempts []RecoverAttempt
	// left says why groups of the set outside used were left out.
	left map[int]string
	// stopped: a failed attempt could not be discarded, so no other was
	// made.
	stopped bool
	// read holds the groups whose shares some attempt read.
	read map[int]bool
}

// recoverSet recovers the data from set s with rc and checks it against
// the digest its records carry. It tries all the shares first, dropping
// any share the recovery names as bad (a *sharing.ShareError); then every
// t consecutive ones of those left (in index order, cyclically), so that
// one share that passes its own checks but spoils the recovery is got
// round. Sets of shares already tried, as rc reads them, are not tried
// again. That is at most 2m+1 recoveries for m shares, fewer if a failed
// attempt cannot be discarded.
func recoverSet(dataID string, s *shareSet, rc recoverer) setRecovery {
	out := setRecovery{left: map[int]string{}, read: map[int]bool{}}
	t := s.item.Threshold
	tried := map[string]bool{}
	// try reports whether an attempt from pos succeeded, and whether it
	// was made.
	try := func(pos []int) (ok, made bool) {
		pos = rc.reads(pos)
		key := fmt.Sprint(pos)
		if tried[key] {
			return false, false
		}
		tried[key] = true
		groups := make([]int, len(pos))
		for k, p := range pos {
			groups[k] = s.groups[p]
			out.read[groups[k]] = true
		}
		sum, err := rc.recover(pos)
		if err == nil && s.item.Digest != nil && !bytes.Equal(sum.Digest, s.item.Digest) {
			err = fmt.Errorf("%w: %s: recovered digest %s, recorded %s", ErrDigest, dataID, shortDigest(sum.Digest), shortDigest(s.item.Digest))
		}
		if err != nil {
			if derr := rc.discard(); derr != nil {
				err = fmt.Errorf("%w; %w", err, derr)
				out.stopped = true
			}
			out.attempts = append(out.attempts, RecoverAttempt{Groups: groups, Err: err})
			return false, true
		}
		out.sum, out.used = sum, groups
		return true, true
	}
	live := make([]int, len(s.groups))
	for k := range live {
		live[k] = k
	}
	for len(live) >= t {
		ok, made := try(live)
		if ok {
			out.noteLeft(s)
			return out
		}
		if out.stopped {
			return out
		}
		if !made {
			break
		}
		var se *sharing.ShareError
		last := out.attempts[len(out.attempts)-1].Err
		k := -1
		if errors.As(last, &se) {
			k = slices.IndexFunc(live, func(p int) bool { return s.groups[p] == se.Index })
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
			if ok, _ := try(win); ok {
				out.noteLeft(s)
				return out
			}
			if out.stopped {
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
		if r.read[g] {
			r.left[g] = "left out: the recoveries with its share failed"
		} else {
			r.left[g] = fmt.Sprintf("not needed: the shares of groups %v recovered the data", r.used)
		}
	}
}
