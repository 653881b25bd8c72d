package sharing

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"

	"github.com/klauspost/reedsolomon"
)

// Dispersal mode: AES-256-GCM in segments (the STREAM construction: nonce
// = 7-byte random prefix | 32-bit segment counter | last-segment flag),
// Reed-Solomon over each segment's ciphertext, Asmuth-Bloom over the key,
// and a manifest tag that binds the Merkle root of all shard hashes, the
// length and the segment count.

const (
	flagMiddle   = 0
	flagLast     = 1
	flagManifest = 2

	labelEnc      = "qledger/sharing/v1 aes-256-gcm"
	labelDigest   = "qledger/sharing/v1 digest"
	labelSegment  = "qledger/sharing/v1 segment"
	labelManifest = "qledger/sharing/v1 manifest"
)

// dispersalKeys holds the keys derived from the 256-bit data key K with
// HKDF-SHA256 (salt = split ID): one for AES-GCM, one for the digest.
type dispersalKeys struct {
	aead   cipher.AEAD
	digest []byte
}

func deriveKeys(key []byte, id [16]byte) (*dispersalKeys, error) {
	enc, err := hkdf.Key(sha256.New, key, id[:], labelEnc, 32)
	if err != nil {
		return nil, fmt.Errorf("sharing: derive key: %w", err)
	}
	dig, err := hkdf.Key(sha256.New, key, id[:], labelDigest, 32)
	if err != nil {
		return nil, fmt.Errorf("sharing: derive key: %w", err)
	}
	block, err := aes.NewCipher(enc)
	if err != nil {
		return nil, fmt.Errorf("sharing: aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("sharing: gcm: %w", err)
	}
	return &dispersalKeys{aead: aead, digest: dig}, nil
}

func nonceFor(prefix [7]byte, counter uint32, flag byte) []byte {
	n := make([]byte, 12)
	copy(n, prefix[:])
	binary.BigEndian.PutUint32(n[7:], counter)
	n[11] = flag
	return n
}

// commonAAD encodes the parameters shared by all shares of a split.
func commonAAD(label string, s *Share) []byte {
	b := append([]byte(label), byte(s.Version), byte(s.Scheme), byte(s.Threshold), byte(s.Total))
	b = append(b, s.SplitID[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(s.SegmentSize))
	b = binary.BigEndian.AppendUint16(b, uint16(s.Dispersal.KeyModulusBits))
	return append(b, s.Dispersal.NoncePrefix[:]...)
}

// manifestAAD is what the manifest tag authenticates: the common
// parameters, the length, the segment count and the Merkle root.
func manifestAAD(s *Share, root [32]byte) []byte {
	b := commonAAD(labelManifest, s)
	b = binary.BigEndian.AppendUint64(b, uint64(s.Length))
	b = binary.BigEndian.AppendUint64(b, uint64(s.frameCount()))
	return append(b, root[:]...)
}

// splitDigest is the keyed digest of a split.
func splitDigest(k *dispersalKeys, s *Share, root [32]byte) []byte {
	m := hmac.New(sha256.New, k.digest)
	m.Write(commonAAD(labelDigest, s))
	var l [8]byte
	binary.BigEndian.PutUint64(l[:], uint64(s.Length))
	m.Write(l[:])
	m.Write(root[:])
	return m.Sum(nil)
}

var rsCache sync.Map // [2]int -> reedsolomon.Encoder

func rsEncoder(t, n int) (reedsolomon.Encoder, error) {
	key := [2]int{t, n}
	if e, ok := rsCache.Load(key); ok {
		return e.(reedsolomon.Encoder), nil
	}
	e, err := reedsolomon.New(t, n-t)
	if err != nil {
		return nil, fmt.Errorf("sharing: reed-solomon (%d, %d): %w", t, n-t, err)
	}
	e2, _ := rsCache.LoadOrStore(key, e)
	return e2.(reedsolomon.Encoder), nil
}

// splitShelf keeps dispersal split buffers by (t, n, shard size).
var splitShelf shelf[[3]int, *segBuf]

// recoverShelf keeps dispersal recovery buffers by (t, shard size, number
// of parity shards used).
var recoverShelf shelf[[3]int, *recvBuf]

// defaultSegment is DefaultSegmentSize, reduced when n/t is large so that
// a segment with its parity (n/t segments) stays within 16 MiB, but not
// below 64 KiB: splitting holds four of them.
func defaultSegment(t, n int) int {
	s := int(int64(16<<20) * int64(t) / int64(n))
	return max(64<<10, min(DefaultSegmentSize, s&^4095))
}

// dispersal holds what splitting and recovering a dispersal item need.
type dispersal struct {
	t, n   int
	keys   *dispersalKeys
	enc    reedsolomon.Encoder
	aad    []byte
	prefix [7]byte
}

func newDispersal(s *Share, keys *dispersalKeys) (*dispersal, error) {
	enc, err := rsEncoder(s.Threshold, s.Total)
	if err != nil {
		return nil, err
	}
	return &dispersal{
		t: s.Threshold, n: s.Total, keys: keys, enc: enc,
		aad: commonAAD(labelSegment, s), prefix: s.Dispersal.NoncePrefix,
	}, nil
}

func segmentFlag(last bool) byte {
	if last {
		return flagLast
	}
	return flagMiddle
}

// seal encrypts the nb plaintext bytes at the start of buf.data in place,
// pads the ciphertext to t equal data shards and computes the parity
// shards; buf.shards then holds all n.
func (d *dispersal) seal(buf *segBuf, nb int, segment int64, last bool) error {
	ct := d.keys.aead.Seal(buf.data[:0], nonceFor(d.prefix, uint32(segment), segmentFlag(last)), buf.data[:nb], d.aad)
	f := (len(ct) + d.t - 1) / d.t
	clear(buf.data[len(ct) : d.t*f])
	for i := 0; i < d.t; i++ {
		buf.shards[i] = buf.data[i*f : (i+1)*f]
	}
	for i := range buf.parity {
		buf.shards[d.t+i] = buf.parity[i][:f]
	}
	if d.n > d.t {
		if err := d.enc.Encode(buf.shards); err != nil {
			return fmt.Errorf("sharing: reed-solomon encode: %w", err)
		}
	}
	return nil
}

// splitDispersal reads the first segment (to size small items), draws the
// key, shares it, then seals and disperses segment by segment.
func splitDispersal(r io.Reader, sinks []shareSink, opts Options) (Summary, []*Share, error) {
	seg := opts.SegmentSize
	if seg == 0 {
		seg = defaultSegment(opts.Threshold, opts.Shares)
	}
	// Data shorter than a probe is one segment of its own length (at least
	// MinSegmentSize), so small items need small buffers here and on
	// recovery.
	head := make([]byte, min(seg, 64<<10))
	m, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return Summary{}, nil, fmt.Errorf("sharing: read data: %w", err)
	}
	if m == 0 {
		return Summary{}, nil, ErrEmptyData
	}
	if m < len(head) {
		seg = max(m, MinSegmentSize)
	}
	r = io.MultiReader(bytes.NewReader(head[:m]), r)
	shares, keys, err := newDispersalShares(opts, seg)
	if err != nil {
		return Summary{}, nil, err
	}
	d, err := newDispersal(shares[0], keys)
	if err != nil {
		return Summary{}, nil, err
	}
	t, n := opts.Threshold, opts.Shares
	full := int((int64(seg) + gcmOverhead + int64(t) - 1) / int64(t))
	shape := [3]int{t, n, full}
	pool := newBufferPool(4, func() *segBuf {
		return splitShelf.take(shape, func() *segBuf {
			b := &segBuf{data: make([]byte, t*full), parity: make([][]byte, n-t), shards: make([][]byte, n)}
			for i := range b.parity {
				b.parity[i] = make([]byte, full)
			}
			return b
		})
	})
	p, err := newPipeline(shares, sinks, func(j int, job *splitJob, _ any) []byte { return job.shards[j] }, nil)
	if err != nil {
		return Summary{}, nil, err
	}
	sr := &segmentReader{r: r, size: seg, pool: pool}
	var runErr error
	for segment := int64(0); !p.failed.Load(); segment++ {
		buf, nb, last, err := sr.next()
		if err == nil && segment >= 1<<32 {
			pool.put(buf)
			err = fmt.Errorf("%w: more than 2^32 segments", ErrDataTooLarge)
		}
		if err == nil {
			if err = d.seal(buf, nb, segment, last); err != nil {
				pool.put(buf)
			}
		}
		if err != nil {
			runErr = err
			break
		}
		p.submit(&splitJob{last: last, shards: buf.shards, release: func() { pool.put(buf) }})
		if last {
			break
		}
	}
	closeErr := p.close()
	pool.drain(func(b *segBuf) { splitShelf.keep(shape, b) })
	if closeErr != nil {
		return Summary{}, nil, closeErr
	}
	if runErr != nil {
		return Summary{}, nil, runErr
	}
	digest, err := d.finish(p, shares, sr.total)
	if err != nil {
		return Summary{}, nil, err
	}
	return summaryOf(shares[0], digest), shares, nil
}

// newDispersalShares draws the split ID, the data key and the nonce
// prefix, shares the key with Asmuth-Bloom, and returns the share
// skeletons and the derived keys. The key itself is wiped.
func newDispersalShares(opts Options, seg int) ([]*Share, *dispersalKeys, error) {
	t, n := opts.Threshold, opts.Shares
	rnd := opts.rand()
	id, err := newSplitID(rnd)
	if err != nil {
		return nil, nil, err
	}
	var key [32]byte
	var prefix [7]byte
	if _, err := io.ReadFull(rnd, key[:]); err != nil {
		return nil, nil, fmt.Errorf("sharing: read randomness: %w", err)
	}
	defer clear(key[:])
	if _, err := io.ReadFull(rnd, prefix[:]); err != nil {
		return nil, nil, fmt.Errorf("sharing: read randomness: %w", err)
	}
	ab, err := abParamsFor(keyBits, t, n)
	if err != nil {
		return nil, nil, err
	}
	res, err := ab.split(new(big.Int).SetBytes(key[:]), rnd)
	if err != nil {
		return nil, nil, err
	}
	keys, err := deriveKeys(key[:], id)
	if err != nil {
		return nil, nil, err
	}
	kbits := abModulusBits(keyBits, t)
	shares := skeletons(opts, id, seg)
	for j, s := range shares {
		s.Dispersal = &DispersalParams{
			KeyModulusBits: kbits,
			KeyShare:       res[j].FillBytes(make([]byte, (kbits+7)/8)),
			NoncePrefix:    prefix,
		}
	}
	return shares, keys, nil
}

// finish computes the Merkle root over the shard hashes, the manifest tag
// and every share's audit path, writes the trailers and returns the keyed
// digest.
func (d *dispersal) finish(p *pipeline, shares []*Share, length int64) ([]byte, error) {
	leaves := make([][32]byte, len(shares))
	for j, s := range shares {
		leaves[j] = merkleLeafOf(p.shardHash(j))
		s.Length = length
	}
	root := merkleRoot(leaves)
	tag := d.keys.aead.Seal(nil, nonceFor(d.prefix, 0, flagManifest), nil, manifestAAD(shares[0], root))
	for j, s := range shares {
		s.Dispersal.Root = root
		copy(s.Dispersal.Tag[:], tag)
		s.Dispersal.Proof = merklePath(j, leaves)
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	return splitDigest(d.keys, shares[0], root), nil
}

// recoverKey recovers the data key from the sources' key shares and
// derives the keys from it.
func recoverKey(srcs []source) (*dispersalKeys, error) {
	s0 := srcs[0].meta()
	ab, err := abParamsFor(keyBits, s0.Threshold, s0.Total)
	if err != nil {
		return nil, err
	}
	idx := make([]int, len(srcs))
	res := make([]*big.Int, len(srcs))
	for i, src := range srcs {
		idx[i] = src.meta().Index
		res[i] = new(big.Int).SetBytes(src.meta().Dispersal.KeyShare)
	}
	k, err := ab.recover(idx, res)
	if err != nil {
		return nil, fmt.Errorf("sharing: recover data key: %w", err)
	}
	key := k.FillBytes(make([]byte, 32))
	defer clear(key)
	return deriveKeys(key, s0.SplitID)
}

// recvBuf is one segment's recovery buffer: data shards in place in data,
// parity shards (of used sources with index >= t) in parity, and the
// destination of each source's next frame in dsts.
type recvBuf struct {
	data   []byte
	parity [][]byte
	dsts   [][]byte
	// parityOf maps a source position to its parity buffer.
	parityOf map[int][]byte
}

// place points each source at its destination: data shard j at offset
// j*full of data, parity shards at the parity buffers in order.
func (b *recvBuf) place(srcs []source, t, full int) {
	b.parityOf = make(map[int][]byte, len(b.parity))
	k := 0
	for i, src := range srcs {
		if j := src.meta().Index; j < t {
			b.dsts[i] = b.data[j*full : (j+1)*full]
		} else {
			b.dsts[i] = b.parity[k]
			b.parityOf[i] = b.parity[k]
			k++
		}
	}
}

// recoverDispersal recovers the key from the t sources' key shares, then
// each segment: Reed-Solomon reconstruction of the missing data shards,
// AES-GCM open, write. Before the last segment is written it checks the
// trailers, every used share's Merkle proof and the manifest tag.
func recoverDispersal(srcs []source, w io.Writer) (Summary, error) {
	s0 := srcs[0].meta()
	keys, err := recoverKey(srcs)
	if err != nil {
		return Summary{}, err
	}
	d, err := newDispersal(s0, keys)
	if err != nil {
		return Summary{}, err
	}
	t := s0.Threshold
	// Decide before the fetcher runs: streams set Length when they end.
	full := s0.fullFrameLen()
	if s0.Length != 0 && s0.frameCount() == 1 { // in memory, one frame: size the buffers to it
		full = s0.frameLen(s0.Length)
	}
	var nparity int
	for _, src := range srcs {
		if src.meta().Index >= t {
			nparity++
		}
	}
	shape := [3]int{t, full, nparity}
	pool := newBufferPool(2, func() *recvBuf {
		b := recoverShelf.take(shape, func() *recvBuf {
			b := &recvBuf{data: make([]byte, t*full), parity: make([][]byte, nparity), dsts: make([][]byte, t)}
			for i := range b.parity {
				b.parity[i] = make([]byte, full)
			}
			return b
		})
		b.place(srcs, t, full)
		return b
	})
	var cur *recvBuf
	var inflight []*recvBuf
	defer func() {
		// After the fetcher has stopped, keep the buffers for next time.
		if cur != nil {
			pool.put(cur)
		}
		for _, b := range inflight {
			pool.put(b)
		}
		pool.drain(func(b *recvBuf) { recoverShelf.keep(shape, b) })
	}()
	f := newFetcher(srcs)
	defer f.close()
	issue := func() {
		b := pool.get()
		f.request(b.dsts)
		inflight = append(inflight, b)
	}
	issue()
	for segment := int64(0); ; segment++ {
		resp, err := f.collect()
		cur, inflight = inflight[0], inflight[1:]
		if err != nil {
			return Summary{}, err
		}
		last := resp[0].last
		if !last {
			issue() // read the next segment while this one is decoded
		}
		size := int64(s0.SegmentSize)
		if last {
			if size, err = lastSegment(srcs, segment); err != nil {
				return Summary{}, err
			}
		}
		pt, err := d.open(cur, srcs, full, resp[0].n, size, segment, last)
		if err != nil {
			return Summary{}, err
		}
		var digest []byte
		if last {
			if digest, err = d.checkFinal(srcs); err != nil {
				return Summary{}, err
			}
		}
		if err := writeOut(w, pt); err != nil {
			return Summary{}, err
		}
		if last {
			return summaryOf(s0, digest), nil
		}
		pool.put(cur)
		cur = nil
	}
}

// lastSegment checks the trailers once the last frames are in and returns
// the last segment's plaintext size.
func lastSegment(srcs []source, segment int64) (int64, error) {
	if err := checkTrailers(srcs); err != nil {
		return 0, err
	}
	s0 := srcs[0].meta()
	if s0.frameCount() != segment+1 {
		return 0, fmt.Errorf("%w: %d segments, length says %d", ErrInconsistent, segment+1, s0.frameCount())
	}
	return s0.lastFrameData(), nil
}

// open rebuilds one segment's ciphertext from the frames in cur (each fl
// bytes, read at stride full), checks its zero padding and decrypts it in
// place. size is the segment's plaintext length.
func (d *dispersal) open(cur *recvBuf, srcs []source, full, fl int, size, segment int64, last bool) ([]byte, error) {
	t := d.t
	if fl != srcs[0].meta().frameLen(size) {
		return nil, fmt.Errorf("%w: segment %d frame length", ErrInconsistent, segment)
	}
	// Lay the data shards out with stride fl (only the last segment is
	// shorter than full; sources are in index order, so moving them down
	// in order is safe) and mark the missing ones for reconstruction.
	shards := make([][]byte, d.n)
	for i, src := range srcs {
		j := src.meta().Index
		if j < t {
			if fl != full {
				copy(cur.data[j*fl:(j+1)*fl], cur.data[j*full:j*full+fl])
			}
			shards[j] = cur.data[j*fl : (j+1)*fl]
		} else {
			shards[j] = cur.parityOf[i][:fl]
		}
	}
	for j := 0; j < t; j++ {
		if shards[j] == nil {
			shards[j] = cur.data[j*fl : j*fl : (j+1)*fl]
		}
	}
	if err := d.enc.ReconstructData(shards); err != nil {
		return nil, fmt.Errorf("%w: reed-solomon: %v", ErrInconsistent, err)
	}
	ctLen := int(size) + gcmOverhead
	for _, b := range cur.data[ctLen : t*fl] {
		if b != 0 {
			return nil, fmt.Errorf("%w: segment %d padding", ErrInconsistent, segment)
		}
	}
	pt, err := d.keys.aead.Open(cur.data[:0], nonceFor(d.prefix, uint32(segment), segmentFlag(last)), cur.data[:ctLen], d.aad)
	if err != nil {
		return nil, fmt.Errorf("%w: segment %d", ErrAuthentication, segment)
	}
	return pt, nil
}

// checkFinal checks every source's Merkle proof and the manifest tag, and
// returns the keyed digest.
func (d *dispersal) checkFinal(srcs []source) ([]byte, error) {
	for _, src := range srcs {
		if err := checkProof(src); err != nil {
			return nil, err
		}
	}
	s0 := srcs[0].meta()
	root := s0.Dispersal.Root
	if _, err := d.keys.aead.Open(nil, nonceFor(d.prefix, 0, flagManifest), s0.Dispersal.Tag[:], manifestAAD(s0, root)); err != nil {
		return nil, fmt.Errorf("%w: manifest tag", ErrAuthentication)
	}
	return splitDigest(d.keys, s0, root), nil
}
