package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"qledger/fsm"
)

// A snapshot file is one group's chain store with a checksummed header:
//
//	qledger snapshot 1\n
//	{"group":0,"height":41,"head":"…","log_size":57,...,"sha256":"…"}\n
//	<bytes of the chain store, a bbolt file>
//
// The header's sha256 and bytes cover the store; its head is what a full
// verification of the store (fsm.VerifyFile) found. A file is only written
// once both hold, and verify checks both again.

// snapshotMagic is a snapshot file's first line.
const snapshotMagic = "qledger snapshot 1\n"

// maxSnapshotHeader bounds the header line.
const maxSnapshotHeader = 64 << 10

// errSnapshot is a snapshot file that is not what its header says.
var errSnapshot = errors.New("snapshot")

// snapshotHeader describes the store that follows it.
type snapshotHeader struct {
	Group   uint32    `json:"group"`
	Height  uint64    `json:"height"`
	Head    string    `json:"head"`
	LogSize uint64    `json:"log_size"`
	LogRoot string    `json:"log_root"`
	Txs     uint64    `json:"txs"`
	Bytes   int64     `json:"bytes"`
	SHA256  string    `json:"sha256"`
	Created time.Time `json:"created"`
	Source  string    `json:"source,omitempty"`
}

// describeStore verifies the store file at path in full as group g's and
// returns the header that describes it (all but Created and Source).
func describeStore(path string, g uint32) (snapshotHeader, error) {
	rep, err := fsm.VerifyFile(path, g)
	if err != nil {
		return snapshotHeader{}, fmt.Errorf("%w: the store does not verify: %w", errSnapshot, err)
	}
	sum, n, err := fileSHA256(path)
	if err != nil {
		return snapshotHeader{}, err
	}
	h := snapshotHeader{Group: g, Height: rep.Head.Height, LogSize: rep.Head.LogSize, Txs: rep.Txs, Bytes: n, SHA256: sum}
	if rep.Blocks > 0 {
		h.Head, h.LogRoot = rep.Head.Hash().String(), rep.Head.LogRoot.String()
	}
	return h, nil
}

func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	d := sha256.New()
	n, err := io.Copy(d, f)
	return hex.EncodeToString(d.Sum(nil)), n, err
}

// writeSnapshotFile writes header and the store at storePath to path,
// through a temporary file renamed into place once synced.
func writeSnapshotFile(path string, h snapshotHeader, storePath string) error {
	hdr, err := json.Marshal(h)
	if err != nil {
		return err
	}
	src, err := os.Open(storePath)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	_, _ = w.WriteString(snapshotMagic)
	_, _ = w.Write(append(hdr, '\n'))
	if _, err = io.Copy(w, src); err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// readSnapshotFile checks the snapshot file at path: its header, the
// store's size and checksum, a full verification of the store, and that
// the verified head is the header's. It copies the store to storePath,
// converted to the current on-disk format, and returns the header.
func readSnapshotFile(path, storePath string) (snapshotHeader, error) {
	var h snapshotHeader
	f, err := os.Open(path)
	if err != nil {
		return h, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != snapshotMagic {
		return h, fmt.Errorf("%w: %s is not a qledger snapshot (version 1)", errSnapshot, path)
	}
	line, err := r.ReadSlice('\n')
	if err != nil || len(line) > maxSnapshotHeader {
		return h, fmt.Errorf("%w: %s: no header line", errSnapshot, path)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return h, fmt.Errorf("%w: %s: header: %v", errSnapshot, path, err)
	}
	out, err := os.OpenFile(storePath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return h, err
	}
	d := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, d), r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return h, err
	}
	if n != h.Bytes || hex.EncodeToString(d.Sum(nil)) != h.SHA256 {
		return h, fmt.Errorf("%w: %s: the store is %d bytes with another checksum than the header's %d bytes, sha256 %.16s…: damaged or cut short", errSnapshot, path, n, h.Bytes, h.SHA256)
	}
	// A file saved by a release of an older chain store format is
	// verified and restored in this one's; the file stays as it is.
	if _, err := fsm.MigrateFile(storePath); err != nil {
		return h, fmt.Errorf("%w: %s: %w", errSnapshot, path, err)
	}
	got, err := describeStore(storePath, h.Group)
	if err != nil {
		return h, err
	}
	if got.Height != h.Height || got.Head != h.Head || got.LogRoot != h.LogRoot {
		return h, fmt.Errorf("%w: %s: the store's head (height %d, %.16s…) is not the header's (height %d, %.16s…)", errSnapshot, path, got.Height, got.Head, h.Height, h.Head)
	}
	return h, nil
}

// tempStore is a path for a store copy beside dir's files, removed by the
// returned function.
func tempStore(dir string) (string, func(), error) {
	f, err := os.CreateTemp(dir, ".qledger-snapshot-*.db")
	if err != nil {
		return "", nil, err
	}
	f.Close()
	return f.Name(), func() { os.Remove(f.Name()) }, nil
}
