package client

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"

	"qledger/sharing"
)

// PutReader is PutData for data read from r to EOF, with memory bounded
// by segment sizes rather than by the data: every shard record carries
// its share's hash, which is known only once the share is complete, so
// PutReader first splits with sharing.SplitStream into n temporary files
// in opt.TempDir (os.TempDir() if empty), then uploads each share's
// segments reading its file one segment at a time, and removes the files
// before it returns. The files take about n/t times the data's size
// (dispersal and paper modes). Cancelling ctx stops the reading of r.
func (c *Client) PutReader(ctx context.Context, r io.Reader, opt PutOptions) (PutResult, error) {
	opt, so, err := c.putDefaults(ctx, opt)
	if err != nil {
		return PutResult{}, err
	}
	sp, err := newSpool(opt.TempDir, fmt.Sprintf("qledger-put-%s-", opt.DataID), opt.Shares)
	if err != nil {
		return PutResult{}, err
	}
	defer sp.remove()
	sum, err := sharing.SplitStream(&ctxReader{ctx: ctx, r: r}, sp.writers(), so)
	if err == nil {
		err = sp.flush()
	}
	if err != nil {
		return PutResult{}, err
	}
	shares := make([]encodedShare, len(sp.files))
	for i, f := range sp.files {
		if shares[i], err = spooledShare(f); err != nil {
			return PutResult{}, fmt.Errorf("client: share %d: %w", i, err)
		}
	}
	return c.upload(ctx, opt, sum, shares)
}

// spooledShare describes the encoded share in f. The share's hash is its
// last 32 bytes (see sharing's binary encoding).
func spooledShare(f *os.File) (encodedShare, error) {
	st, err := f.Stat()
	if err != nil {
		return encodedShare{}, err
	}
	sh := encodedShare{size: st.Size(), r: f}
	if sh.size < int64(len(sh.hash)) {
		return encodedShare{}, fmt.Errorf("%w: spooled share of %d bytes", sharing.ErrMalformed, sh.size)
	}
	if _, err := f.ReadAt(sh.hash[:], sh.size-int64(len(sh.hash))); err != nil {
		return encodedShare{}, err
	}
	return sh, nil
}

// spool is a set of temporary files, one per share, written through
// buffers.
type spool struct {
	files []*os.File
	bufs  []*bufio.Writer
}

// spoolBuffer is the write buffer of each spooled share: SplitStream
// writes each frame's 5-byte header and its payload separately.
const spoolBuffer = 64 << 10

// newSpool creates n temporary files in dir (os.TempDir() if empty)
// named after prefix.
func newSpool(dir, prefix string, n int) (*spool, error) {
	sp := &spool{}
	for i := range n {
		f, err := os.CreateTemp(dir, fmt.Sprintf("%s%d-*.share", prefix, i))
		if err != nil {
			sp.remove()
			return nil, fmt.Errorf("client: spool share %d: %w", i, err)
		}
		sp.files = append(sp.files, f)
		sp.bufs = append(sp.bufs, bufio.NewWriterSize(f, spoolBuffer))
	}
	return sp, nil
}

func (sp *spool) writers() []io.Writer {
	ws := make([]io.Writer, len(sp.bufs))
	for i, b := range sp.bufs {
		ws[i] = b
	}
	return ws
}

func (sp *spool) flush() error {
	for i, b := range sp.bufs {
		if err := b.Flush(); err != nil {
			return fmt.Errorf("client: spool share %d: %w", i, err)
		}
	}
	return nil
}

// remove closes and deletes the files.
func (sp *spool) remove() {
	for _, f := range sp.files {
		f.Close()
		os.Remove(f.Name())
	}
}

// ctxReader is r that fails once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (cr *ctxReader) Read(p []byte) (int, error) {
	if err := cr.ctx.Err(); err != nil {
		return 0, err
	}
	return cr.r.Read(p)
}
