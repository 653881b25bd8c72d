package sharing

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
)

// splitPaper implements the SSDSM split (its Algorithm 1) with public,
// cached moduli: each chunk of the data, read as a big-endian integer, is
// reduced modulo the n primes of the family for k bits.
func splitPaper(r io.Reader, sinks []shareSink, opts Options) (Summary, []*Share, error) {
	t, n := opts.Threshold, opts.Shares
	id, err := newSplitID(opts.rand())
	if err != nil {
		return Summary{}, nil, err
	}
	// k depends on the length when the data is shorter than one maximal
	// chunk; read that much ahead to know.
	cmax := paperChunkSize(MaxLength, t, paperMaxModulusBits)
	head := make([]byte, cmax+1)
	m, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return Summary{}, nil, fmt.Errorf("sharing: read data: %w", err)
	}
	if m == 0 {
		return Summary{}, nil, ErrEmptyData
	}
	k, c := paperMaxModulusBits, cmax
	if m <= cmax {
		k = paperModulusBits(int64(m), t)
		c = paperChunkSize(int64(m), t, k)
	}
	r = io.MultiReader(bytes.NewReader(head[:m]), r)
	seg := paperSegmentSize(opts.SegmentSize, c)
	if m <= cmax {
		seg = c // the whole data is one chunk: one frame of one residue
	}
	mods := getFamily(kindPrime, k).moduli(n)
	w := k / 8

	shares := skeletons(opts, id, seg)
	for _, s := range shares {
		s.Paper = &PaperParams{ModulusBits: k, ChunkSize: c}
	}
	produce := func(j int, job *splitJob, scratch any) []byte {
		sc := scratch.(*paperScratch)
		chunks := (len(job.data) + c - 1) / c
		out := sc.out[:chunks*w]
		for i := 0; i < chunks; i++ {
			chunk := job.data[i*c : min((i+1)*c, len(job.data))]
			sc.x.SetBytes(chunk)
			sc.q.QuoRem(&sc.x, mods[j], &sc.r)
			sc.r.FillBytes(out[i*w : (i+1)*w])
		}
		return out
	}
	newScratch := func() any { return &paperScratch{out: make([]byte, seg/c*w)} }
	p, err := newPipeline(shares, sinks, produce, newScratch)
	if err != nil {
		return Summary{}, nil, err
	}
	pool := newBufferPool(4, func() *segBuf { return &segBuf{data: make([]byte, seg)} })
	sr := &segmentReader{r: r, size: seg, pool: pool}
	h := sha256.New()
	var readErr error
	for !p.failed.Load() {
		buf, nb, last, err := sr.next()
		if err != nil {
			readErr = err
			break
		}
		h.Write(buf.data[:nb])
		p.submit(&splitJob{last: last, data: buf.data[:nb], release: func() { pool.put(buf) }})
		if last {
			break
		}
	}
	if err := p.close(); err != nil {
		return Summary{}, nil, err
	}
	if readErr != nil {
		return Summary{}, nil, readErr
	}
	var digest [32]byte
	h.Sum(digest[:0])
	for _, s := range shares {
		s.Length = sr.total
		s.Paper.Digest = digest
	}
	if err := p.finish(); err != nil {
		return Summary{}, nil, err
	}
	return summaryOf(shares[0], digest[:]), shares, nil
}

type paperScratch struct {
	x, q, r big.Int
	out     []byte
}

// recoverPaper implements the SSDSM recovery (its Algorithm 2) with Garner
// recombination over the t sources, chunk by chunk.
func recoverPaper(srcs []source, w io.Writer) (Summary, error) {
	s0 := srcs[0].meta()
	t, k, c, seg := s0.Threshold, s0.Paper.ModulusBits, s0.Paper.ChunkSize, s0.SegmentSize
	width := k / 8
	fam := getFamily(kindPrime, k)
	idx := make([]int, t)
	for i, s := range srcs {
		idx[i] = s.meta().Index
	}
	g, err := fam.plan(idx)
	if err != nil {
		return Summary{}, err
	}
	// Decide before the fetcher runs: streams set Length when they end.
	multi := s0.Length == 0 || s0.frameCount() > 1 // unknown, or several frames
	full, outSize := s0.fullFrameLen(), seg
	if !multi { // in memory, one frame: size the buffers to it
		full, outSize = s0.frameLen(s0.Length), int(s0.Length)
	}
	type pbuf struct {
		frames [][]byte
		out    []byte
	}
	pool := newBufferPool(3, func() *pbuf {
		b := &pbuf{frames: make([][]byte, t), out: make([]byte, outSize)}
		for i := range b.frames {
			b.frames[i] = make([]byte, full)
		}
		return b
	})
	f := newFetcher(srcs)
	defer f.close()
	var inflight []*pbuf
	issue := func() {
		b := pool.get()
		f.request(b.frames)
		inflight = append(inflight, b)
	}
	issue()
	scratch := make([]*paperRecoverScratch, workers())
	for i := range scratch {
		scratch[i] = newPaperRecoverScratch(t)
	}
	h := sha256.New()
	for frame := int64(0); ; frame++ {
		resp, err := f.collect()
		cur := inflight[0]
		inflight = inflight[1:]
		if err != nil {
			return Summary{}, err
		}
		last := resp[0].last
		if !last {
			issue() // read the next segment while this one is decoded
		}
		dataLen := int64(seg)
		if last {
			if err := checkTrailers(srcs); err != nil {
				return Summary{}, err
			}
			dataLen = s0.Length - frame*int64(seg)
		}
		chunks := int((dataLen + int64(c) - 1) / int64(c))
		if dataLen < 1 || dataLen > int64(seg) || resp[0].n != chunks*width {
			return Summary{}, fmt.Errorf("%w: frame %d does not match the length", ErrInconsistent, frame)
		}
		out := cur.out[:dataLen]
		if err := paperCombine(g, idx, cur.frames, out, c, width, scratch); err != nil {
			return Summary{}, err
		}
		h.Write(out)
		if last {
			var d [32]byte
			h.Sum(d[:0])
			if d != s0.Paper.Digest {
				return Summary{}, fmt.Errorf("%w: SHA-256 of the recovered data does not match the digest", ErrAuthentication)
			}
		}
		if err := writeOut(w, out); err != nil {
			return Summary{}, err
		}
		if last {
			return summaryOf(s0, append([]byte(nil), s0.Paper.Digest[:]...)), nil
		}
		pool.put(cur)
	}
}

// paperRecoverScratch is one goroutine's temporaries.
type paperRecoverScratch struct {
	g   *garnerScratch
	res []*big.Int
	y   big.Int
}

func newPaperRecoverScratch(t int) *paperRecoverScratch {
	s := &paperRecoverScratch{g: newGarnerScratch(t), res: make([]*big.Int, t)}
	for i := range s.res {
		s.res[i] = new(big.Int)
	}
	return s
}

// paperCombine recovers the chunks of one segment into out, splitting the
// chunks among the scratch goroutines.
func paperCombine(g *garner, idx []int, frames [][]byte, out []byte, c, width int, scratch []*paperRecoverScratch) error {
	chunks := (len(out) + c - 1) / c
	parts := min(len(scratch), max(1, chunks/8))
	if parts == 1 {
		return paperCombineRange(g, idx, frames, out, c, width, 0, chunks, scratch[0])
	}
	var wg sync.WaitGroup
	errs := make([]error, parts)
	for p := range parts {
		lo, hi := chunks*p/parts, chunks*(p+1)/parts
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[p] = paperCombineRange(g, idx, frames, out, c, width, lo, hi, scratch[p])
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func paperCombineRange(g *garner, idx []int, frames [][]byte, out []byte, c, width, lo, hi int, s *paperRecoverScratch) error {
	for ci := lo; ci < hi; ci++ {
		for j := range frames {
			r := s.res[j].SetBytes(frames[j][ci*width : (ci+1)*width])
			if r.Cmp(g.m[j]) >= 0 {
				return shareErr(idx[j], fmt.Errorf("%w: residue not below its modulus", ErrInconsistent))
			}
		}
		g.combine(&s.y, s.res, s.g)
		chunk := out[ci*c : min((ci+1)*c, len(out))]
		if s.y.BitLen() > 8*len(chunk) {
			return fmt.Errorf("%w: chunk %d out of range", ErrInconsistent, ci)
		}
		s.y.FillBytes(chunk)
	}
	return nil
}
