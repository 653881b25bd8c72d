package client

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"qledger/sharing"
)

// shareInfo is what GetDataTo needs of a spooled share: the header fields
// its records must match, its split, and its hash.
type shareInfo struct {
	scheme                  sharing.Scheme
	threshold, total, index int
	splitID                 [16]byte
	hash                    [32]byte
}

// Layout of sharing's binary share encoding, version 1 (see
// sharing/codec.go): header = "QSHR" | version | scheme | t | n | index |
// split ID [16] | segment size u32 | params length u16 | params; frames
// of flag u8 | length u32 | payload, the last with flag 1; trailer = data
// length u64 | extra length u16 | extra; then the hash [32], which is
// SHA-256(SHA-256(header | frames) | trailer).
const (
	shareHeaderLen  = 31
	shareFrameLen   = 5
	shareTrailerLen = 10
)

var shareMagic = [4]byte{'Q', 'S', 'H', 'R'}

// readShareInfo reads one encoded share from r to its end without holding
// it: it reads the header's fixed fields, walks the frames and trailer,
// and checks that the share hashes to the hash it ends with and that
// nothing follows. Errors wrap sharing.ErrMalformed, ErrVersion,
// ErrUnknownScheme or ErrTampered, as sharing.DecodeShare and Verify
// report them. Unlike Verify it does not check the fields against each
// other: sharing.RecoverStream does that for every share it recovers
// from.
func readShareInfo(r io.Reader) (shareInfo, error) {
	shard := sha256.New()
	buf := make([]byte, 32<<10)
	// skip hashes the next n bytes into h, as io.CopyN would but with
	// one buffer for all.
	skip := func(h io.Writer, n int64, what string) error {
		m, err := io.CopyBuffer(h, io.LimitReader(r, n), buf)
		if err == nil && m < n {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return readErr(err, what)
		}
		return nil
	}
	read := func(p []byte, what string) error {
		if _, err := io.ReadFull(r, p); err != nil {
			return readErr(err, what)
		}
		shard.Write(p)
		return nil
	}
	var hd [shareHeaderLen]byte
	if err := read(hd[:], "header"); err != nil {
		return shareInfo{}, err
	}
	switch {
	case [4]byte(hd[:4]) != shareMagic:
		return shareInfo{}, fmt.Errorf("%w: bad magic", sharing.ErrMalformed)
	case hd[4] != sharing.Version:
		return shareInfo{}, fmt.Errorf("%w: %d", sharing.ErrVersion, hd[4])
	case !sharing.Scheme(hd[5]).Valid():
		return shareInfo{}, fmt.Errorf("%w: code %d", sharing.ErrUnknownScheme, hd[5])
	}
	info := shareInfo{scheme: sharing.Scheme(hd[5]), threshold: int(hd[6]), total: int(hd[7]), index: int(hd[8]), splitID: [16]byte(hd[9:25])}
	if err := skip(shard, int64(binary.BigEndian.Uint16(hd[29:])), "parameters"); err != nil {
		return shareInfo{}, err
	}
	for last := false; !last; {
		var fh [shareFrameLen]byte
		if err := read(fh[:], "frame header"); err != nil {
			return shareInfo{}, err
		}
		n := binary.BigEndian.Uint32(fh[1:])
		switch {
		case fh[0] > 1:
			return shareInfo{}, fmt.Errorf("%w: frame flag %d", sharing.ErrMalformed, fh[0])
		case n == 0:
			return shareInfo{}, fmt.Errorf("%w: empty frame", sharing.ErrMalformed)
		}
		if err := skip(shard, int64(n), "frame"); err != nil {
			return shareInfo{}, err
		}
		last = fh[0] == 1
	}
	full := sha256.New()
	full.Write(shard.Sum(nil))
	var tr [shareTrailerLen]byte
	if _, err := io.ReadFull(r, tr[:]); err != nil {
		return shareInfo{}, readErr(err, "trailer")
	}
	full.Write(tr[:])
	if err := skip(full, int64(binary.BigEndian.Uint16(tr[8:])), "trailer"); err != nil {
		return shareInfo{}, err
	}
	if _, err := io.ReadFull(r, info.hash[:]); err != nil {
		return shareInfo{}, readErr(err, "hash")
	}
	if n, _ := io.ReadFull(r, make([]byte, 1)); n != 0 {
		return shareInfo{}, fmt.Errorf("%w: trailing bytes", sharing.ErrMalformed)
	}
	if [32]byte(full.Sum(nil)) != info.hash {
		return shareInfo{}, fmt.Errorf("sharing: share %d: %w", info.index, sharing.ErrTampered)
	}
	return info, nil
}

// readErr is a short read of what as sharing reports it, or the read
// error.
func readErr(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: truncated %s", sharing.ErrMalformed, what)
	}
	return fmt.Errorf("read %s: %w", what, err)
}
