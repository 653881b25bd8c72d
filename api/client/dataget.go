package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"qledger/sharing"
)

// GetDataTo is GetData writing the data to w, with memory bounded by
// segment sizes rather than by the data. It fetches a share from every
// group as GetData does, but writes each to a temporary file in
// os.TempDir() as its segments arrive, checking each segment, and then
// the whole share, by GetShare's rules; it recovers from the files with
// sharing.RecoverStream and removes them before it returns. The files
// take about n/t times the data's size.
//
// In dispersal mode every segment is authenticated before it is written
// to w, and the Merkle proofs and manifest tag before the last one; paper
// mode is checked only by its final digest; the digest recorded on the
// shares is compared at the end. So on error w may hold part of the data,
// or in paper mode wrong data, and must be discarded: write to a
// temporary file and rename it on success. When a recovery fails,
// GetDataTo tries other sets of shares as GetData does if w is an
// io.Seeker with a Truncate method, such as an *os.File: it cuts what
// the failed attempt wrote off w first. With any other writer it tries
// another set only when the failed attempt wrote nothing, and otherwise
// fails with a *RecoverError that matches ErrOutputWritten.
func (c *Client) GetDataTo(ctx context.Context, w io.Writer, dataID, caller string) (GetReport, error) {
	st, err := c.Cluster(ctx)
	if err != nil {
		return GetReport{}, err
	}
	out := newOutput(w)
	vs, failed := fetchAll(len(st.Groups), func(i int, level Level) (verifiedShare, error) {
		return c.spoolShare(ctx, dataID, i, caller, level, os.TempDir())
	})
	defer func() {
		for _, v := range vs {
			os.Remove(v.file)
		}
	}()
	rep := GetReport{Failed: failed}
	sets := partition(vs)
	if err := checkEnough(dataID, sets, failed); err != nil {
		return rep, err
	}
	err = recoverSets(dataID, sets, &rep, func(s *shareSet) recoverer { return &fileRecoverer{set: s, out: out} })
	return rep, err
}

// spoolShare fetches share i of dataID from group i page by page,
// writing it to a temporary file in dir segment by segment, and verifies
// it by GetShare's rules. It holds one segment at a time. The file is
// removed on error; otherwise the caller removes it.
func (c *Client) spoolShare(ctx context.Context, dataID string, i int, caller string, level Level, dir string) (v verifiedShare, err error) {
	f, err := os.CreateTemp(dir, fmt.Sprintf("qledger-get-%s-%d-*.share", dataID, i))
	if err != nil {
		return verifiedShare{}, fmt.Errorf("client: spool share %d: %w", i, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("client: spool share %d: %w", i, cerr)
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	sc, err := c.fetchShare(ctx, dataID, i, caller, level, func(b []byte) error {
		if _, err := f.Write(b); err != nil {
			return fmt.Errorf("client: spool share %d: %w", i, err)
		}
		return nil
	})
	if err != nil {
		return verifiedShare{}, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return verifiedShare{}, fmt.Errorf("client: spool share %d: %w", i, err)
	}
	info, err := readShareInfo(bufio.NewReaderSize(f, spoolBuffer))
	if err != nil {
		return verifiedShare{}, sc.bad("%v", err)
	}
	if err := sc.checkShare(info.index, info.threshold, info.total, info.scheme, info.hash); err != nil {
		return verifiedShare{}, err
	}
	return verifiedShare{group: i, splitID: info.splitID, file: f.Name(), item: sc.item()}, nil
}

// openGet sends a GET and returns the response, whose body the caller
// reads and closes. An error status is returned as the *APIError do
// returns for it.
func (c *Client) openGet(ctx context.Context, path string, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: GET %s: %w", path, err)
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("client: GET %s: %w", path, err)
	}
	e := &APIError{Status: resp.StatusCode}
	if json.Unmarshal(data, &e.Body) != nil || e.Body.Code == "" {
		e.Body = ErrorBody{Code: CodeInternal, Error: strings.TrimSpace(string(data))}
	}
	return nil, e
}

// maxDownloadValue bounds each value of a share download, with what the
// JSON decoder has read ahead, that decodeDownload holds: a segment's
// JSON is about 2.1 MiB at most (its transaction bytes and the payload
// decoded for people, base64, and its proof).
const maxDownloadValue = 8 << 20

var errValueTooLarge = fmt.Errorf("a value exceeds %d bytes", maxDownloadValue)

// decodeDownload reads a ShareDownload, the answer to GET path, from r one
// value at a time, handing the head to head and each segment, in order,
// to segment, so that only one segment is held at a time. The item,
// which nothing trusts, and unknown fields are skipped. The callbacks'
// errors are returned as they are.
func decodeDownload(r io.Reader, path string, head func(Head) error, segment func(TxResponse) error) error {
	br := &budgetReader{r: r}
	dec := json.NewDecoder(br)
	// budget lets the decoder read up to maxDownloadValue bytes beyond
	// what it has buffered already for the next value.
	budget := func() {
		br.left = maxDownloadValue
		if b, ok := dec.Buffered().(interface{ Len() int }); ok {
			br.left -= int64(b.Len())
		}
	}
	bad := func(err error) error { return fmt.Errorf("client: GET %s: bad response: %w", path, err) }
	next := func(v any) error {
		budget()
		if err := dec.Decode(v); err != nil {
			return bad(err)
		}
		return nil
	}
	token := func() (json.Token, error) {
		budget()
		tok, err := dec.Token()
		if err != nil {
			return nil, bad(err)
		}
		return tok, nil
	}
	unexpected := func(tok json.Token) error {
		return bad(fmt.Errorf("unexpected %v at offset %d", tok, dec.InputOffset()))
	}
	expect := func(want json.Delim) error {
		tok, err := token()
		if err == nil && tok != want {
			err = unexpected(tok)
		}
		return err
	}
	if err := expect('{'); err != nil {
		return err
	}
	for dec.More() {
		key, err := token()
		if err != nil {
			return err
		}
		switch key {
		case "head":
			var h Head
			if err := next(&h); err != nil {
				return err
			}
			if err := head(h); err != nil {
				return err
			}
		case "segments":
			tok, err := token()
			if err != nil {
				return err
			}
			if tok == nil { // null: no segments
				continue
			}
			if tok != json.Delim('[') {
				return unexpected(tok)
			}
			for dec.More() {
				// Tx repeats the payload decoded for people: skip it.
				var seg struct {
					TxResponse
					Tx struct{} `json:"tx"`
				}
				if err := next(&seg); err != nil {
					return err
				}
				if err := segment(seg.TxResponse); err != nil {
					return err
				}
			}
			if err := expect(']'); err != nil {
				return err
			}
		default:
			var skip json.RawMessage
			if err := next(&skip); err != nil {
				return err
			}
		}
	}
	return expect('}')
}

// budgetReader reads from r until left bytes have been read.
type budgetReader struct {
	r    io.Reader
	left int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errValueTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// fileRecoverer recovers from spooled shares into out.
type fileRecoverer struct {
	set *shareSet
	out *output
}

// reads is the t lowest of pos, which are all sharing.RecoverStream
// reads past their headers, or in asmuth-bloom mode all of them.
func (fr *fileRecoverer) reads(pos []int) []int {
	if fr.set.item.Scheme == sharing.AsmuthBloom.String() {
		return pos
	}
	return pos[:min(len(pos), fr.set.item.Threshold)]
}

func (fr *fileRecoverer) recover(pos []int) (sharing.Summary, error) {
	rs := make([]io.Reader, len(pos))
	for k, p := range pos {
		f, err := os.Open(fr.set.files[p])
		if err != nil {
			return sharing.Summary{}, fmt.Errorf("client: spooled share %d: %w", fr.set.groups[p], err)
		}
		defer f.Close()
		rs[k] = bufio.NewReaderSize(f, spoolBuffer)
	}
	return sharing.RecoverStream(fr.out, rs)
}

func (fr *fileRecoverer) discard() error { return fr.out.rewind() }

// output is GetDataTo's writer: it counts what an attempt wrote and, if
// the writer can be rewound, cuts it off again.
type output struct {
	w       io.Writer
	rw      rewinder
	start   int64
	written int64
	err     error
}

// rewinder is a writer whose end can be cut off: an *os.File.
type rewinder interface {
	io.Seeker
	Truncate(size int64) error
}

// newOutput wraps w, which can be rewound if it is a rewinder whose
// position can be read.
func newOutput(w io.Writer) *output {
	o := &output{w: w}
	if rw, ok := w.(rewinder); ok {
		if start, err := rw.Seek(0, io.SeekCurrent); err == nil {
			o.rw, o.start = rw, start
		}
	}
	return o
}

func (o *output) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	o.written += int64(n)
	if err != nil && o.err == nil {
		o.err = err
	}
	return n, err
}

// rewind takes back what was written since the last rewind. A write
// error, or output that cannot be rewound, is an error.
func (o *output) rewind() error {
	switch {
	case o.err != nil:
		return fmt.Errorf("client: no other set tried after the output failed: %w", o.err)
	case o.written == 0:
		return nil
	case o.rw == nil:
		return fmt.Errorf("%w (%d bytes written)", ErrOutputWritten, o.written)
	}
	if _, err := o.rw.Seek(o.start, io.SeekStart); err != nil {
		return fmt.Errorf("%w: %v", ErrOutputWritten, err)
	}
	if err := o.rw.Truncate(o.start); err != nil {
		return fmt.Errorf("%w: %v", ErrOutputWritten, err)
	}
	o.written = 0
	return nil
}
