package sharing

import (
	"fmt"
	"io"
	"math/big"
)

// splitAsmuthBloom splits a secret of at most MaxSecretSize bytes with
// Asmuth-Bloom: d0 = 2^(8*len), k-bit coprime moduli with k = 8*len+136+t.
// The secret is read as a big-endian integer and its length is stored, so
// leading zero bytes survive.
func splitAsmuthBloom(r io.Reader, sinks []shareSink, opts Options) (Summary, []*Share, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSecretSize+1))
	if err != nil {
		return Summary{}, nil, fmt.Errorf("sharing: read data: %w", err)
	}
	if len(data) == 0 {
		return Summary{}, nil, ErrEmptyData
	}
	if len(data) > MaxSecretSize {
		return Summary{}, nil, fmt.Errorf("%w: asmuth-bloom takes at most %d bytes", ErrDataTooLarge, MaxSecretSize)
	}
	t, n := opts.Threshold, opts.Shares
	rnd := opts.rand()
	id, err := newSplitID(rnd)
	if err != nil {
		return Summary{}, nil, err
	}
	b := 8 * len(data)
	ab, err := abParamsFor(b, t, n)
	if err != nil {
		return Summary{}, nil, err
	}
	res, err := ab.split(new(big.Int).SetBytes(data), rnd)
	if err != nil {
		return Summary{}, nil, err
	}
	k := abModulusBits(b, t)
	shares := skeletons(opts, id, 0)
	var fh [frameHeaderLen]byte
	for j, s := range shares {
		s.AsmuthBloom = &AsmuthBloomParams{ModulusBits: k}
		s.Length = int64(len(data))
		frame := res[j].FillBytes(make([]byte, (k+7)/8))
		var h shardHasher
		hdr := s.appendHeader(nil)
		h.init(hdr)
		putFrameHeader(fh[:], len(frame), true)
		h.write(fh[:])
		h.write(frame)
		tr := s.appendTrailer(nil)
		s.Hash = shareHash(h.sum(), tr)
		if err := sinks[j].header(hdr); err != nil {
			return Summary{}, nil, err
		}
		if err := sinks[j].frame(fh[:], frame); err != nil {
			return Summary{}, nil, err
		}
		if err := sinks[j].trailer(tr, s.Hash); err != nil {
			return Summary{}, nil, err
		}
	}
	return summaryOf(shares[0], nil), shares, nil
}

// recoverAsmuthBloom combines the first t sources and checks the others
// against the result.
func recoverAsmuthBloom(srcs []source, w io.Writer) (Summary, error) {
	s0 := srcs[0].meta()
	size := s0.fullFrameLen()
	idx := make([]int, len(srcs))
	res := make([]*big.Int, len(srcs))
	for i, src := range srcs {
		buf := make([]byte, size)
		n, last, err := src.next(buf)
		if err != nil {
			return Summary{}, err
		}
		if !last || n != size {
			return Summary{}, shareErr(src.meta().Index, malformed("asmuth-bloom share with more than one frame"))
		}
		idx[i] = src.meta().Index
		res[i] = new(big.Int).SetBytes(buf)
	}
	if err := checkTrailers(srcs); err != nil {
		return Summary{}, err
	}
	ab, err := abParamsFor(8*int(s0.Length), s0.Threshold, s0.Total)
	if err != nil {
		return Summary{}, err
	}
	s, err := ab.recover(idx, res)
	if err != nil {
		return Summary{}, err
	}
	if err := writeOut(w, s.FillBytes(make([]byte, s0.Length))); err != nil {
		return Summary{}, err
	}
	return summaryOf(s0, nil), nil
}
