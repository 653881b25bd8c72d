package sharing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
)

// Recover recovers the data from t or more shares of one split, in any
// order. It is strict: every share given must be well formed and match its
// hash (otherwise a *ShareError naming the share's index, wrapping
// ErrTampered or ErrMalformed, and nothing is recovered), the shares must
// come from one split (ErrMixedShares) with distinct indices
// (ErrDuplicateIndex), and there must be at least t of them
// (ErrTooFewShares). To recover around bad shares, drop those whose Verify
// fails and call Recover with the rest.
//
// Beyond the hashes, dispersal checks every share's Merkle proof, the
// manifest tag and every segment's AES-GCM tag (ErrAuthentication), and
// asmuth-bloom checks that shares beyond the first t agree
// (ErrInconsistent). Paper mode checks the SHA-256 digest of the result
// (ErrAuthentication). It is safe for concurrent use.
func Recover(shares []*Share) ([]byte, Summary, error) {
	if len(shares) == 0 {
		return nil, Summary{}, fmt.Errorf("%w: 0 given", ErrTooFewShares)
	}
	for i, s := range shares {
		if s == nil {
			return nil, Summary{}, fmt.Errorf("%w: share at position %d is nil", ErrMalformed, i)
		}
	}
	srcs, err := verifyAll(shares)
	if err != nil {
		return nil, Summary{}, err
	}
	used, err := selectSources(srcs, true)
	if err != nil {
		return nil, Summary{}, err
	}
	if shares[0].Scheme == Dispersal {
		for _, src := range srcs {
			if err := checkProof(src); err != nil {
				return nil, Summary{}, err
			}
		}
	}
	var out bytes.Buffer
	out.Grow(int(shares[0].Length))
	sum, err := decode(used, &out)
	if err != nil {
		return nil, Summary{}, err
	}
	return out.Bytes(), sum, nil
}

// verifyAll verifies every share, in parallel when there is much to hash,
// and returns the first error in argument order.
func verifyAll(shares []*Share) ([]source, error) {
	srcs := make([]source, len(shares))
	errs := make([]error, len(shares))
	check := func(i int) {
		shard, err := shares[i].verify()
		srcs[i], errs[i] = &memSource{s: shares[i], shard: shard}, err
	}
	var total int
	for _, s := range shares {
		total += len(s.Payload)
	}
	if w := workers(); w > 1 && total > 256<<10 {
		var wg sync.WaitGroup
		next := atomic.Int64{}
		for range w {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1)) - 1; i < len(shares); i = int(next.Add(1)) - 1 {
					check(i)
				}
			}()
		}
		wg.Wait()
	} else {
		for i := range shares {
			check(i)
		}
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return srcs, nil
}

// RecoverStream recovers the data from t or more encoded shares, read from
// rs, and writes it to w. Only t of the readers are read past their header
// (the lowest indices; all of them in asmuth-bloom mode). Shares are
// verified as they are read: their hashes, and in dispersal mode every
// segment's AES-GCM tag before its plaintext is written, and the Merkle
// proofs and manifest tag before the last segment is written. Paper mode
// has no authentication until its final digest check, so on any error the
// output already written must be discarded. RecoverStream returns only
// after it has stopped using the readers.
func RecoverStream(w io.Writer, rs []io.Reader) (Summary, error) {
	if len(rs) == 0 {
		return Summary{}, fmt.Errorf("%w: 0 given", ErrTooFewShares)
	}
	srcs := make([]source, len(rs))
	for i, r := range rs {
		src := &streamSource{sr: shareReader{r: r}}
		if err := src.sr.readHeader(); err != nil {
			return Summary{}, fmt.Errorf("sharing: reader %d: %w", i, err)
		}
		srcs[i] = src
	}
	used, err := selectSources(srcs, false)
	if err != nil {
		return Summary{}, err
	}
	return decode(used, w)
}

// source yields the frames of one share.
type source interface {
	// meta returns the share's fields; the trailer fields are set once the
	// last frame has been returned.
	meta() *Share
	// next reads the next frame into dst (room for a full frame) and says
	// whether it is the last. After the last frame the share has been
	// checked against its hash.
	next(dst []byte) (int, bool, error)
	// shardHash is valid after the last frame.
	shardHash() [32]byte
}

// memSource reads a verified in-memory share.
type memSource struct {
	s     *Share
	shard [32]byte
	off   int
	frame int64
}

func (m *memSource) meta() *Share        { return m.s }
func (m *memSource) shardHash() [32]byte { return m.shard }

func (m *memSource) next(dst []byte) (int, bool, error) {
	s := m.s
	count := s.frameCount()
	if m.frame >= count {
		return 0, false, shareErr(s.Index, malformed("read past the last frame"))
	}
	n := s.fullFrameLen()
	last := m.frame == count-1
	if last {
		n = len(s.Payload) - m.off
	}
	if n > len(dst) {
		return 0, false, shareErr(s.Index, malformed("frame exceeds buffer"))
	}
	copy(dst, s.Payload[m.off:m.off+n])
	m.off += n
	m.frame++
	return n, last, nil
}

// streamSource reads an encoded share from a stream, checking it.
type streamSource struct{ sr shareReader }

func (s *streamSource) meta() *Share        { return &s.sr.s }
func (s *streamSource) shardHash() [32]byte { return s.sr.shard }

func (s *streamSource) next(dst []byte) (int, bool, error) {
	n, last, err := s.sr.nextFrame(dst)
	if err == nil && last {
		err = s.sr.readTrailer(s.sr.payload, s.sr.lastLen, true)
		if err == nil {
			err = s.sr.checkHash()
		}
	}
	if err != nil {
		return 0, false, shareErr(s.sr.s.Index, err)
	}
	return n, last, nil
}

// selectSources checks that the sources come from one split with distinct
// indices, at least t of them, and returns the ones to decode from: all
// for asmuth-bloom, otherwise the t with the lowest indices (data shards
// first in dispersal mode). full says the trailer fields are known and
// must agree too.
func selectSources(srcs []source, full bool) ([]source, error) {
	first := srcs[0].meta()
	for _, src := range srcs[1:] {
		if err := sameSplit(first, src.meta(), full); err != nil {
			return nil, err
		}
	}
	sorted := append([]source(nil), srcs...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].meta().Index < sorted[j].meta().Index })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].meta().Index == sorted[i-1].meta().Index {
			return nil, fmt.Errorf("%w: %d", ErrDuplicateIndex, sorted[i].meta().Index)
		}
	}
	t := first.Threshold
	if len(sorted) < t {
		idx := make([]int, len(sorted))
		for i, s := range sorted {
			idx[i] = s.meta().Index
		}
		return nil, fmt.Errorf("%w: %d given (indices %v), %d needed", ErrTooFewShares, len(sorted), idx, t)
	}
	if first.Scheme == AsmuthBloom {
		return sorted, nil
	}
	return sorted[:t], nil
}

// sameSplit reports whether b belongs to the same split as a.
func sameSplit(a, b *Share, full bool) error {
	mixed := func(what string) error {
		return fmt.Errorf("%w: share %d and share %d differ in %s", ErrMixedShares, a.Index, b.Index, what)
	}
	switch {
	case a.SplitID != b.SplitID:
		return mixed("split ID")
	case a.Version != b.Version || a.Scheme != b.Scheme:
		return mixed("version or scheme")
	case a.Threshold != b.Threshold || a.Total != b.Total:
		return mixed("t or n")
	case a.SegmentSize != b.SegmentSize:
		return mixed("segment size")
	}
	switch a.Scheme {
	case Paper:
		if a.Paper.ModulusBits != b.Paper.ModulusBits || a.Paper.ChunkSize != b.Paper.ChunkSize {
			return mixed("paper parameters")
		}
	case AsmuthBloom:
		if a.AsmuthBloom.ModulusBits != b.AsmuthBloom.ModulusBits {
			return mixed("asmuth-bloom parameters")
		}
	case Dispersal:
		if a.Dispersal.KeyModulusBits != b.Dispersal.KeyModulusBits || a.Dispersal.NoncePrefix != b.Dispersal.NoncePrefix {
			return mixed("dispersal parameters")
		}
	}
	if full {
		return sameTrailer(a, b)
	}
	return nil
}

// sameTrailer compares the fields known after the last frame.
func sameTrailer(a, b *Share) error {
	mixed := func(what string) error {
		return fmt.Errorf("%w: share %d and share %d differ in %s", ErrMixedShares, a.Index, b.Index, what)
	}
	if a.Length != b.Length {
		return mixed("length")
	}
	switch a.Scheme {
	case Paper:
		if a.Paper.Digest != b.Paper.Digest {
			return mixed("digest")
		}
	case Dispersal:
		if a.Dispersal.Root != b.Dispersal.Root || a.Dispersal.Tag != b.Dispersal.Tag {
			return mixed("Merkle root or manifest tag")
		}
	}
	return nil
}

// checkTrailers compares the trailers of all sources after the last frame.
func checkTrailers(srcs []source) error {
	for _, s := range srcs[1:] {
		if err := sameTrailer(srcs[0].meta(), s.meta()); err != nil {
			return err
		}
	}
	return nil
}

// checkProof checks a dispersal share's audit path against its root.
func checkProof(src source) error {
	s := src.meta()
	root, ok := merkleRootFromPath(s.Index, s.Total, merkleLeafOf(src.shardHash()), s.Dispersal.Proof)
	if !ok || root != s.Dispersal.Root {
		return shareErr(s.Index, fmt.Errorf("%w: Merkle proof does not lead to the root", ErrAuthentication))
	}
	return nil
}

func decode(srcs []source, w io.Writer) (Summary, error) {
	switch srcs[0].meta().Scheme {
	case Paper:
		return recoverPaper(srcs, w)
	case AsmuthBloom:
		return recoverAsmuthBloom(srcs, w)
	default:
		return recoverDispersal(srcs, w)
	}
}

// errPastEnd answers requests made after a source's last frame.
var errPastEnd = errors.New("sharing: no frame after the last")

// fetcher reads the next frame of several sources concurrently, one
// goroutine per source, with up to two requests outstanding per source.
// In-memory sources are read inline: copying needs no goroutines.
type fetcher struct {
	srcs  []source
	reqs  []chan []byte
	resps []chan fetchResp
	wg    sync.WaitGroup
	stop  atomic.Bool

	inline bool
	queue  [][][]byte
	done   []bool
}

type fetchResp struct {
	n    int
	last bool
	err  error
}

func newFetcher(srcs []source) *fetcher {
	inline := true
	for _, s := range srcs {
		if _, ok := s.(*memSource); !ok {
			inline = false
		}
	}
	if inline {
		return &fetcher{srcs: srcs, inline: true, done: make([]bool, len(srcs))}
	}
	f := &fetcher{
		srcs:  srcs,
		reqs:  make([]chan []byte, len(srcs)),
		resps: make([]chan fetchResp, len(srcs)),
	}
	for i := range srcs {
		f.reqs[i] = make(chan []byte, 2)
		f.resps[i] = make(chan fetchResp, 2)
		f.wg.Add(1)
		go f.run(i)
	}
	return f
}

func (f *fetcher) run(i int) {
	defer f.wg.Done()
	done := false
	for dst := range f.reqs[i] {
		if done || f.stop.Load() {
			f.resps[i] <- fetchResp{err: errPastEnd}
			continue
		}
		n, last, err := f.srcs[i].next(dst)
		done = last || err != nil
		f.resps[i] <- fetchResp{n: n, last: last, err: err}
	}
}

// request asks every source for its next frame, source i into dsts[i].
func (f *fetcher) request(dsts [][]byte) {
	if f.inline {
		f.queue = append(f.queue, dsts)
		return
	}
	for i, d := range dsts {
		f.reqs[i] <- d
	}
}

// collect waits for one answer from every source, in request order. It
// returns the first error, and an error if the sources disagree on the
// frame length or on which frame is the last.
func (f *fetcher) collect() ([]fetchResp, error) {
	out := make([]fetchResp, len(f.srcs))
	var first error
	for i := range f.srcs {
		out[i] = f.receive(i)
		if out[i].err != nil && first == nil {
			first = out[i].err
		}
	}
	if f.inline {
		f.queue = f.queue[1:]
	}
	if first != nil {
		return nil, first
	}
	for i := 1; i < len(out); i++ {
		if out[i].last != out[0].last || out[i].n != out[0].n {
			return nil, fmt.Errorf("%w: shares %d and %d have different frames", ErrInconsistent,
				f.srcs[0].meta().Index, f.srcs[i].meta().Index)
		}
	}
	return out, nil
}

// receive returns source i's answer to the oldest request.
func (f *fetcher) receive(i int) fetchResp {
	if !f.inline {
		return <-f.resps[i]
	}
	if f.done[i] {
		return fetchResp{err: errPastEnd}
	}
	n, last, err := f.srcs[i].next(f.queue[0][i])
	f.done[i] = last || err != nil
	return fetchResp{n: n, last: last, err: err}
}

// close stops the goroutines after their current read and waits for them.
func (f *fetcher) close() {
	if f.inline {
		return
	}
	f.stop.Store(true)
	for _, c := range f.reqs {
		close(c)
	}
	f.wg.Wait()
}

// writeOut writes p to w, wrapping the error.
func writeOut(w io.Writer, p []byte) error {
	if _, err := w.Write(p); err != nil {
		return fmt.Errorf("sharing: write data: %w", err)
	}
	return nil
}
