package fsm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
)

// A snapshot leaves a replica only whole and verified: whatever sends
// one — raft's InstallSnapshot (through SnapshotStore.Open), a peer's
// repair, a backup (WriteSnapshot) — reads it through a checkedReader,
// which copies the bytes to a temporary file beside the store as they
// go out and verifies that copy in full (VerifyFile) before it hands
// over the last chunk. A damaged snapshot therefore ends with an error
// one chunk short of its end: the receiver never holds all of it, and
// raft's transport closes the connection.

// sendChunk is how many bytes a checkedReader reads from its source at
// a time, and so at least how many it holds back until the check.
const sendChunk = 256 << 10

// checkedReader streams src, a snapshot of a chain store of group, and
// verifies it in full before its last chunk goes out.
type checkedReader struct {
	src    io.ReadCloser
	tmp    *os.File
	group  uint32
	logger hclog.Logger

	buf     []byte
	out     []byte // bytes ready to hand over
	pending []byte // the latest chunk, held back until the next one or the check
	err     error  // sticky: io.EOF after a passed check, or what ended the stream
}

// checkedSend wraps a snapshot of this FSM's group for sending. The
// temporary copy lives beside the store and is removed on Close.
func (f *FSM) checkedSend(src io.ReadCloser) (io.ReadCloser, error) {
	tmp, err := os.CreateTemp(filepath.Dir(f.store.path), filepath.Base(f.store.path)+".send-*")
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("fsm: snapshot: %w", err)
	}
	return &checkedReader{src: src, tmp: tmp, group: f.store.group, logger: f.logger, buf: make([]byte, sendChunk)}, nil
}

// Read hands over the snapshot's bytes; the last chunk only after the
// whole snapshot verified. Damage ends the stream with an error wrapping
// ErrDamaged.
func (r *checkedReader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.next()
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

// next reads the next chunk: the chunk held back goes out and the new
// one is held back; at the end of the source, the check decides whether
// the held-back chunk goes out.
func (r *checkedReader) next() {
	n, err := r.src.Read(r.buf)
	if n > 0 {
		if _, werr := r.tmp.Write(r.buf[:n]); werr != nil {
			r.err = fmt.Errorf("fsm: snapshot: %w", werr)
			return
		}
		r.out, r.pending = r.pending, append([]byte(nil), r.buf[:n]...)
	}
	switch {
	case errors.Is(err, io.EOF):
		r.err = r.check()
		if r.err == io.EOF {
			r.out = append(r.out, r.pending...)
		}
		r.pending = nil
	case err != nil:
		r.err = err
	}
}

// check verifies the copy in full; io.EOF if it passed.
func (r *checkedReader) check() error {
	if err := r.tmp.Close(); err != nil {
		return fmt.Errorf("fsm: snapshot: %w", err)
	}
	if _, err := VerifyFile(r.tmp.Name(), r.group); err != nil {
		r.logger.Error("snapshot not sent: it does not verify", "error", err)
		return fmt.Errorf("fsm: snapshot refused: %w", err)
	}
	return io.EOF
}

// Close closes the source and removes the temporary copy.
func (r *checkedReader) Close() error {
	r.tmp.Close()
	os.Remove(r.tmp.Name())
	return r.src.Close()
}

// WriteSnapshot writes a consistent copy of the store to w (for a peer's
// repair or a backup), verified in full before its last chunk is
// written: a damaged store fails with an error wrapping ErrDamaged and
// w is left one chunk short. A store marked damaged is refused at once.
func (f *FSM) WriteSnapshot(w io.Writer) error {
	s, err := f.FullSnapshot()
	if err != nil {
		return err
	}
	defer s.Release()
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(s.Persist(writerSink{pw}))
	}()
	rc, err := f.checkedSend(pr)
	if err == nil {
		_, err = io.Copy(w, rc)
		rc.Close() // a Persist still writing stops
	}
	<-done // before Release ends the transaction Persist reads
	return err
}

// writerSink is a raft.SnapshotSink over a plain writer.
type writerSink struct{ io.Writer }

func (writerSink) ID() string    { return "stream" }
func (writerSink) Cancel() error { return nil }
func (writerSink) Close() error  { return nil }
