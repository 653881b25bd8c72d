package sharing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
)

// Summary describes a split or a recovery.
type Summary struct {
	Scheme    Scheme
	SplitID   [16]byte
	Threshold int
	Shares    int
	// Length is the data length in bytes.
	Length int64
	// Digest identifies the whole data for a later check:
	//   - paper: SHA-256 of the data (as in SSDSM; confirms guesses);
	//   - dispersal: the keyed split digest, HMAC-SHA256 under a key derived
	//     from the data key over the split's parameters, length and Merkle
	//     root (see DESIGN.md); it reveals nothing about the data to anyone
	//     without t shares;
	//   - asmuth-bloom: nil (a plain hash of a small secret would confirm
	//     guesses, and there is no key to make it keyed).
	Digest []byte
}

// Split splits data into opts.Shares shares, any opts.Threshold of which
// recover it. Empty data is ErrEmptyData. It is safe for concurrent use.
func Split(data []byte, opts Options) ([]*Share, Summary, error) {
	if len(data) == 0 {
		return nil, Summary{}, ErrEmptyData
	}
	if err := opts.Validate(); err != nil {
		return nil, Summary{}, err
	}
	sinks := make([]*memSink, opts.Shares)
	ss := make([]shareSink, opts.Shares)
	for i := range sinks {
		sinks[i] = &memSink{}
		ss[i] = sinks[i]
	}
	sum, shares, err := split(bytes.NewReader(data), ss, opts)
	if err != nil {
		return nil, Summary{}, err
	}
	for i, s := range shares {
		s.Payload = sinks[i].payload
	}
	return shares, sum, nil
}

// SplitStream reads the data from r to EOF and writes share i, in its
// binary encoding, to ws[i]; len(ws) must equal opts.Shares. Paper and
// dispersal modes work in segments, holding a few segments in memory at a
// time, so the data may be larger than memory. Each writer is used by one
// goroutine at a time, but different writers are written concurrently and
// not from the caller's goroutine. On error the writers hold partial shares
// that must be discarded.
func SplitStream(r io.Reader, ws []io.Writer, opts Options) (Summary, error) {
	if err := opts.Validate(); err != nil {
		return Summary{}, err
	}
	if len(ws) != opts.Shares {
		return Summary{}, fmt.Errorf("%w: %d writers for n = %d", ErrShareCount, len(ws), opts.Shares)
	}
	ss := make([]shareSink, len(ws))
	for i, w := range ws {
		ss[i] = &writerSink{w: w, index: i}
	}
	sum, _, err := split(r, ss, opts)
	return sum, err
}

func split(r io.Reader, sinks []shareSink, opts Options) (Summary, []*Share, error) {
	switch opts.scheme() {
	case Paper:
		return splitPaper(r, sinks, opts)
	case AsmuthBloom:
		return splitAsmuthBloom(r, sinks, opts)
	default:
		return splitDispersal(r, sinks, opts)
	}
}

// shareSink receives the encoding of one share as it is produced.
type shareSink interface {
	header(b []byte) error
	frame(fh, data []byte) error
	trailer(b []byte, hash [32]byte) error
}

// memSink keeps only the payload; the other fields live in the Share.
type memSink struct{ payload []byte }

func (m *memSink) header([]byte) error { return nil }

func (m *memSink) frame(_, data []byte) error {
	m.payload = append(m.payload, data...)
	return nil
}

func (m *memSink) trailer([]byte, [32]byte) error { return nil }

// writerSink writes the binary encoding to an io.Writer.
type writerSink struct {
	w     io.Writer
	index int
}

func (s *writerSink) write(b []byte) error {
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("sharing: write share %d: %w", s.index, err)
	}
	return nil
}

func (s *writerSink) header(b []byte) error { return s.write(b) }

func (s *writerSink) frame(fh, data []byte) error {
	if err := s.write(fh); err != nil {
		return err
	}
	return s.write(data)
}

func (s *writerSink) trailer(b []byte, hash [32]byte) error {
	if err := s.write(b); err != nil {
		return err
	}
	return s.write(hash[:])
}

// splitJob is one segment handed to every share worker.
type splitJob struct {
	last    bool
	data    []byte   // the plaintext segment (paper)
	shards  [][]byte // the frame of each share (dispersal)
	pending atomic.Int32
	release func()
}

// frameFunc produces share j's frame for a job; scratch is the worker's.
type frameFunc func(j int, job *splitJob, scratch any) []byte

// pipeline runs one goroutine per share that turns jobs into frames,
// hashes them and writes them to the share's sink, while the caller
// prepares the next segment.
type pipeline struct {
	shares  []*Share
	sinks   []shareSink
	hashers []shardHasher
	queues  []chan *splitJob
	wg      sync.WaitGroup
	failed  atomic.Bool
	errMu   sync.Mutex
	err     error
}

// newPipeline writes the headers and starts the workers. newScratch, if
// not nil, gives each worker its scratch value.
func newPipeline(shares []*Share, sinks []shareSink, produce frameFunc, newScratch func() any) (*pipeline, error) {
	p := &pipeline{
		shares:  shares,
		sinks:   sinks,
		hashers: make([]shardHasher, len(shares)),
		queues:  make([]chan *splitJob, len(shares)),
	}
	for j, s := range shares {
		h := s.appendHeader(nil)
		p.hashers[j].init(h)
		if err := sinks[j].header(h); err != nil {
			return nil, err
		}
	}
	for j := range shares {
		p.queues[j] = make(chan *splitJob, 2)
		p.wg.Add(1)
		go p.work(j, produce, newScratch)
	}
	return p, nil
}

func (p *pipeline) work(j int, produce frameFunc, newScratch func() any) {
	defer p.wg.Done()
	var scratch any
	if newScratch != nil {
		scratch = newScratch()
	}
	var fh [frameHeaderLen]byte
	for job := range p.queues[j] {
		if !p.failed.Load() {
			data := produce(j, job, scratch)
			putFrameHeader(fh[:], len(data), job.last)
			p.hashers[j].write(fh[:])
			p.hashers[j].write(data)
			if err := p.sinks[j].frame(fh[:], data); err != nil {
				p.fail(err)
			}
		}
		if job.pending.Add(-1) == 0 && job.release != nil {
			job.release()
		}
	}
}

func (p *pipeline) fail(err error) {
	p.errMu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.errMu.Unlock()
	p.failed.Store(true)
}

// submit hands a job to every worker.
func (p *pipeline) submit(job *splitJob) {
	job.pending.Store(int32(len(p.queues)))
	for _, q := range p.queues {
		q <- job
	}
}

// close stops the workers, waits for them and returns the first error.
func (p *pipeline) close() error {
	for _, q := range p.queues {
		close(q)
	}
	p.wg.Wait()
	return p.err
}

// finish writes the trailers once Length and the trailer fields are set,
// and fills in Hash. It returns the shard hashes.
func (p *pipeline) finish() error {
	for j, s := range p.shares {
		tr := s.appendTrailer(nil)
		s.Hash = shareHash(p.shardHash(j), tr)
		if err := p.sinks[j].trailer(tr, s.Hash); err != nil {
			return err
		}
	}
	return nil
}

func (p *pipeline) shardHash(j int) [32]byte { return p.hashers[j].sum() }

// bufferPool is a bounded set of reusable segment buffers, allocated on
// first use: get blocks once n buffers are out. get must be called from
// one goroutine; put from any.
type bufferPool[T any] struct {
	ch    chan T
	alloc func() T
	made  int
}

func newBufferPool[T any](n int, alloc func() T) *bufferPool[T] {
	return &bufferPool[T]{ch: make(chan T, n), alloc: alloc}
}

func (p *bufferPool[T]) get() T {
	select {
	case v := <-p.ch:
		return v
	default:
	}
	if p.made < cap(p.ch) {
		p.made++
		return p.alloc()
	}
	return <-p.ch
}

func (p *bufferPool[T]) put(v T) { p.ch <- v }

// drain hands every buffer that is back in the pool to keep. Call it when
// no one uses the pool any more; buffers not returned are left to the
// garbage collector.
func (p *bufferPool[T]) drain(keep func(T)) {
	for {
		select {
		case v := <-p.ch:
			keep(v)
		default:
			return
		}
	}
}

// shelf keeps segment buffers between calls, per shape, so that repeated
// splits and recoveries reuse warm memory instead of faulting in fresh
// pages. The garbage collector may empty it at any time.
type shelf[K comparable, T any] struct{ m sync.Map }

func (s *shelf[K, T]) pool(k K) *sync.Pool {
	p, _ := s.m.LoadOrStore(k, &sync.Pool{})
	return p.(*sync.Pool)
}

// take returns a kept buffer of shape k, or a new one from alloc.
func (s *shelf[K, T]) take(k K, alloc func() T) T {
	if v, ok := s.pool(k).Get().(T); ok {
		return v
	}
	return alloc()
}

func (s *shelf[K, T]) keep(k K, v T) { s.pool(k).Put(v) }

// segBuf is one reusable segment buffer. data holds the plaintext (and,
// in dispersal mode, the ciphertext and data shards in place); parity holds
// the parity shards.
type segBuf struct {
	data   []byte
	parity [][]byte
	shards [][]byte
}

// segmentReader reads a stream in segments of a fixed size and says which
// segment is the last. After a full segment it reads one byte ahead to
// know whether more follow.
type segmentReader struct {
	r     io.Reader
	size  int
	pool  *bufferPool[*segBuf]
	eof   bool
	total int64
	// carry is the byte read ahead, if hasCarry.
	carry    [1]byte
	hasCarry bool
}

// read reads into p until it is full or the stream ends.
func (sr *segmentReader) read(p []byte) (int, error) {
	if sr.eof || len(p) == 0 {
		return 0, nil
	}
	n, err := io.ReadFull(sr.r, p)
	sr.total += int64(n)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		sr.eof = true
	default:
		return n, fmt.Errorf("sharing: read data: %w", err)
	}
	if sr.total > MaxLength {
		return n, fmt.Errorf("%w: more than %d bytes", ErrDataTooLarge, int64(MaxLength))
	}
	return n, nil
}

// next returns the next segment (its buffer and length) and whether it is
// the last. A stream with no data at all is ErrEmptyData.
func (sr *segmentReader) next() (*segBuf, int, bool, error) {
	b := sr.pool.get()
	buf := b.data[:sr.size]
	n := 0
	if sr.hasCarry {
		buf[0] = sr.carry[0]
		n, sr.hasCarry = 1, false
	}
	m, err := sr.read(buf[n:])
	n += m
	if err == nil && n == 0 {
		err = ErrEmptyData
	}
	if err != nil {
		sr.pool.put(b)
		return nil, 0, false, err
	}
	if n < sr.size || sr.eof {
		return b, n, true, nil
	}
	k, err := sr.read(sr.carry[:])
	if err != nil {
		sr.pool.put(b)
		return nil, 0, false, err
	}
	sr.hasCarry = k == 1
	return b, n, !sr.hasCarry, nil
}

// workers is the parallelism used for CPU-bound loops.
func workers() int { return runtime.GOMAXPROCS(0) }

// newSplitID draws a random split ID.
func newSplitID(rnd io.Reader) ([16]byte, error) {
	var id [16]byte
	if _, err := io.ReadFull(rnd, id[:]); err != nil {
		return id, fmt.Errorf("sharing: read randomness: %w", err)
	}
	return id, nil
}

// skeletons returns the n shares with the header fields shared by all.
func skeletons(opts Options, id [16]byte, segment int) []*Share {
	shares := make([]*Share, opts.Shares)
	for i := range shares {
		shares[i] = &Share{
			Version:     Version,
			Scheme:      opts.scheme(),
			SplitID:     id,
			Threshold:   opts.Threshold,
			Total:       opts.Shares,
			Index:       i,
			SegmentSize: segment,
		}
	}
	return shares
}

func summaryOf(s *Share, digest []byte) Summary {
	return Summary{
		Scheme:    s.Scheme,
		SplitID:   s.SplitID,
		Threshold: s.Threshold,
		Shares:    s.Total,
		Length:    s.Length,
		Digest:    digest,
	}
}
