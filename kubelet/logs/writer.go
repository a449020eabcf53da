package logs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// A Writer appends the output of one container attempt to a log file in
// the CRI format. Create it with NewWriter, hand Stream("stdout") and
// Stream("stderr") to whatever copies the container's output, and Close it
// once both copies have finished.
type Writer struct {
	path     string
	maxBytes int64
	now      func() time.Time // the clock; replaced in tests

	// mu guards everything below, and makes each record one write.
	mu      sync.Mutex
	f       *os.File
	size    int64 // bytes in f
	streams map[string]*stream
	buf     []byte // scratch space for the records of one Write
	err     error  // first write or rotation error, reported by Close
	closed  bool
}

// NewWriter opens the log file at path for appending, creating it (and its
// directory) when needed. When maxBytes is positive the file is rotated to
// path+".1" before a record would make it larger than maxBytes; only one
// rotated file is kept.
func NewWriter(path string, maxBytes int64) (*Writer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating log directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening log file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening log file: %w", err)
	}
	return &Writer{
		path:     path,
		maxBytes: maxBytes,
		now:      time.Now,
		f:        f,
		size:     st.Size(),
		streams:  make(map[string]*stream),
	}, nil
}

// Stream returns the writer for one output stream, "stdout" or "stderr".
// Repeated calls with the same name return the same writer. The streams of a
// Writer may be written concurrently; a single stream must not be written
// from two goroutines at once (its bytes would mix in undefined order).
//
// Writes to a stream succeed even when the file cannot be written, so that
// a full disk never stalls the container; Close reports the first such
// error. After Close, writes fail with os.ErrClosed.
func (w *Writer) Stream(name string) io.Writer {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.streams[name]
	if s == nil {
		s = &stream{w: w, name: name}
		w.streams[name] = s
	}
	return s
}

// Close writes what is left of unfinished lines as partial records and
// closes the file. It returns the first error met while writing, if any.
// Closing twice is harmless.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.err
	}
	// Flush the streams in a fixed order so the file does not depend on
	// map iteration.
	for _, name := range []string{"stdout", "stderr"} {
		if s := w.streams[name]; s != nil {
			s.flush()
		}
	}
	for name, s := range w.streams {
		if name != "stdout" && name != "stderr" {
			s.flush()
		}
	}
	w.closed = true
	if err := w.f.Close(); err != nil && w.err == nil {
		w.err = fmt.Errorf("closing log file: %w", err)
	}
	return w.err
}

// stream is the io.Writer of one output stream. pending holds the start of
// a line whose newline has not arrived yet; it never exceeds maxRecordText
// because longer text is written out as a partial record at once.
type stream struct {
	w       *Writer
	name    string
	pending []byte // guarded by w.mu
}

func (s *stream) Write(p []byte) (int, error) {
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, os.ErrClosed
	}
	now := w.now()
	rest := p
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			s.pending = append(s.pending, rest...)
			break
		}
		line := rest[:i]
		rest = rest[i+1:]
		if len(s.pending) > 0 {
			s.pending = append(s.pending, line...)
			line = s.pending
		}
		// Cut a long line into partial records, the last piece is full.
		for len(line) > maxRecordText {
			w.record(now, s.name, true, line[:maxRecordText])
			line = line[maxRecordText:]
		}
		w.record(now, s.name, false, line)
		s.pending = s.pending[:0]
	}
	// Text without a newline is held back (so that a line printed in
	// several writes stays one record) but only up to one record's worth.
	for len(s.pending) > maxRecordText {
		w.record(now, s.name, true, s.pending[:maxRecordText])
		s.pending = append(s.pending[:0], s.pending[maxRecordText:]...)
	}
	return len(p), nil
}

// flush writes pending text as a partial record: the stream ended without
// a newline. Called with w.mu held.
func (s *stream) flush() {
	if len(s.pending) > 0 {
		s.w.record(s.w.now(), s.name, true, s.pending)
		s.pending = s.pending[:0]
	}
}

// record writes one record to the file, rotating first when the record
// would pass the size cap. Errors are kept for Close and the text is
// dropped: losing log text is better than blocking the container. Called
// with w.mu held.
func (w *Writer) record(t time.Time, stream string, partial bool, text []byte) {
	w.buf = appendRecord(w.buf[:0], t, stream, partial, text)
	if w.maxBytes > 0 && w.size > 0 && w.size+int64(len(w.buf)) > w.maxBytes {
		w.rotate()
	}
	n, err := w.f.Write(w.buf)
	w.size += int64(n)
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("writing log file: %w", err)
	}
}

// rotate renames the current file to path+".1", replacing the previous
// one, and starts a new file at path. On failure it keeps writing to the
// current file. Called with w.mu held.
func (w *Writer) rotate() {
	if err := os.Rename(w.path, w.path+".1"); err != nil {
		if w.err == nil {
			w.err = fmt.Errorf("rotating log file: %w", err)
		}
		return
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		// Put the file back and keep appending to it rather than losing
		// output; the next record tries again.
		os.Rename(w.path+".1", w.path)
		if w.err == nil {
			w.err = fmt.Errorf("rotating log file: %w", err)
		}
		return
	}
	w.f.Close()
	w.f, w.size = f, 0
}
