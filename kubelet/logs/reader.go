package logs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// ReadOptions select what Read returns. Note that Tail must be set to -1
// to get every line: the zero value returns none.
type ReadOptions struct {
	// Follow keeps reading new records as they are written.
	Follow bool
	// Tail is how many of the last lines to return first; below zero
	// means all of them. With Follow, new lines follow the tail.
	Tail int64
	// Since drops lines written before this time; zero keeps all.
	Since time.Time
	// Timestamps prefixes each line with its time in RFC 3339 (UTC, with
	// nanoseconds) and a space.
	Timestamps bool
	// LimitBytes stops reading once this many bytes (timestamps included)
	// have been written to stdout and stderr together; 0 means no limit.
	LimitBytes int64
}

// Read writes the text of the log at path as the container printed it:
// stdout records to stdout and stderr records to stderr, one Write call per
// line. The rotated file path+".1" is read first when it exists.
//
// Without Follow, Read returns at the end of the file. With Follow it waits
// for new records until ctx ends (returning ctx.Err()) or until done, which
// may be nil, reports true: done must only report true once the log's
// Writer is closed; Read then reads what is left and returns nil.
//
// A line is the text up to a newline; a line split into partial records is
// joined again and carries the time of its first record. Text left without
// a newline at the end of the log is written without one. Malformed records
// are skipped. Reaching LimitBytes ends Read with a nil error.
func Read(ctx context.Context, path string, opts ReadOptions, stdout, stderr io.Writer, done func() bool) error {
	r := &reader{
		opts:    opts,
		stdout:  stdout,
		stderr:  stderr,
		pending: make(map[string]*line),
	}
	if opts.Tail >= 0 {
		r.tail = &ring{max: opts.Tail}
	}
	err := r.run(ctx, path, done)
	if errors.Is(err, errLimit) {
		return nil
	}
	return err
}

// errLimit ends a Read that reached ReadOptions.LimitBytes.
var errLimit = errors.New("byte limit reached")

// line is one line of container output, rebuilt from its records.
type line struct {
	time    time.Time
	stream  string
	text    []byte
	newline bool // false for text that ended without a newline
}

// reader holds the state of one Read.
type reader struct {
	opts           ReadOptions
	stdout, stderr io.Writer
	written        int64
	pending        map[string]*line // per stream: a line still in partial records
	tail           *ring            // collects the initial lines when tailing; nil after
}

func (r *reader) run(ctx context.Context, path string, done func() bool) error {
	// Watch before the first read, so no write after it goes unnoticed.
	var w *watcher
	if r.opts.Follow {
		w = newWatcher(filepath.Dir(path))
		defer w.close()
	}

	// Open path before path+".1": if the file rotates in between, the
	// rotated file is the one already open and must not be read twice.
	cur, err := openLog(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	old, err := openLog(path + ".1")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		cur.close()
		return err
	}
	if cur == nil && old == nil {
		return fmt.Errorf("log file %q: %w", path, os.ErrNotExist)
	}
	defer func() { cur.close() }()
	if old != nil {
		if cur == nil || !cur.same(old) {
			err = r.drain(ctx, old)
		}
		old.close()
		if err != nil {
			return err
		}
	}
	if cur != nil {
		if err := r.drain(ctx, cur); err != nil {
			return err
		}
	}

	if !r.opts.Follow {
		if err := r.flushPending(); err != nil {
			return err
		}
		return r.endTail()
	}
	if err := r.endTail(); err != nil {
		return err
	}
	for {
		// Ask done before draining: whatever was written before the
		// Writer closed is then surely read by the drain below.
		finished := done != nil && done()
		if cur, err = r.drainRotated(ctx, path, cur); err != nil {
			return err
		}
		if finished {
			return r.flushPending()
		}
		if err := w.wait(ctx); err != nil {
			return err
		}
	}
}

// drainRotated reads cur to its end and, while the file at path is no
// longer cur (it was rotated, or not created yet), finishes cur and moves
// on to the new file. It returns the file now being read, nil when path
// does not exist at the moment.
func (r *reader) drainRotated(ctx context.Context, path string, cur *logFile) (*logFile, error) {
	for {
		if cur != nil {
			if err := r.drain(ctx, cur); err != nil {
				return cur, err
			}
		}
		st, err := os.Stat(path)
		if errors.Is(err, os.ErrNotExist) {
			// Between the writer's rename and create; cur (if any) is
			// the rotated file and is complete.
			return cur, nil
		}
		if err != nil {
			return cur, err
		}
		if cur != nil && os.SameFile(cur.info, st) {
			return cur, nil
		}
		// Rotated: the renamed file got its last records before the new
		// one was created, so one more drain finishes it.
		if cur != nil {
			if err := r.drain(ctx, cur); err != nil {
				return cur, err
			}
			cur.close()
		}
		if cur, err = openLog(path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, nil
			}
			return nil, err
		}
	}
}

// logFile is an open log file and the position reached in it.
type logFile struct {
	f     *os.File
	info  os.FileInfo // identity of the file, for spotting rotation
	br    *bufio.Reader
	carry []byte // the start of a record whose newline is not written yet
}

// openLog opens a log file; a missing file is a nil *logFile and an error
// matching os.ErrNotExist.
func openLog(path string) (*logFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &logFile{f: f, info: st, br: bufio.NewReaderSize(f, 64*1024)}, nil
}

func (lf *logFile) same(other *logFile) bool { return os.SameFile(lf.info, other.info) }

func (lf *logFile) close() {
	if lf != nil {
		lf.f.Close()
	}
}

// drain handles every complete record from the current position to the end
// of the file. An incomplete last record is kept until its newline arrives.
func (r *reader) drain(ctx context.Context, lf *logFile) error {
	for n := 0; ; n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		b, err := lf.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) || errors.Is(err, io.EOF) {
			lf.carry = append(lf.carry, b...)
			if errors.Is(err, io.EOF) {
				return nil
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("reading log file: %w", err)
		}
		if len(lf.carry) > 0 {
			lf.carry = append(lf.carry, b...)
			b = lf.carry
		}
		err = r.handleRecord(b[:len(b)-1])
		lf.carry = lf.carry[:0]
		if err != nil {
			return err
		}
	}
}

// handleRecord adds one record to the line of its stream and emits the line
// when the record ends it.
func (r *reader) handleRecord(raw []byte) error {
	rec, err := parseRecord(raw)
	if err != nil {
		return nil // skip what cannot be understood
	}
	l := r.pending[rec.stream]
	if l == nil {
		l = &line{time: rec.time, stream: rec.stream}
	}
	// rec.text aliases the read buffer: copy it.
	l.text = append(l.text, rec.text...)
	if rec.partial {
		r.pending[rec.stream] = l
		return nil
	}
	delete(r.pending, rec.stream)
	l.newline = true
	return r.emit(l)
}

// flushPending emits the lines that ended without a newline, oldest first.
func (r *reader) flushPending() error {
	ls := make([]*line, 0, len(r.pending))
	for _, l := range r.pending {
		ls = append(ls, l)
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].time.Before(ls[j].time) })
	clear(r.pending)
	for _, l := range ls {
		if err := r.emit(l); err != nil {
			return err
		}
	}
	return nil
}

// emit filters a line by time and either keeps it for the tail or writes it.
func (r *reader) emit(l *line) error {
	if !r.opts.Since.IsZero() && l.time.Before(r.opts.Since) {
		return nil
	}
	if r.tail != nil {
		r.tail.push(l)
		return nil
	}
	return r.write(l)
}

// endTail writes the lines kept for the tail and stops collecting.
func (r *reader) endTail() error {
	t := r.tail
	r.tail = nil
	if t == nil {
		return nil
	}
	for _, l := range t.lines() {
		if err := r.write(l); err != nil {
			return err
		}
	}
	return nil
}

// write sends a line to its stream, cut short at the byte limit.
func (r *reader) write(l *line) error {
	var b []byte
	if r.opts.Timestamps {
		b = l.time.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, ' ')
	}
	b = append(b, l.text...)
	if l.newline {
		b = append(b, '\n')
	}
	limited := false
	if r.opts.LimitBytes > 0 {
		if left := r.opts.LimitBytes - r.written; int64(len(b)) >= left {
			b, limited = b[:left], true
		}
	}
	out := r.stdout
	if l.stream == "stderr" {
		out = r.stderr
	}
	if len(b) > 0 {
		if _, err := out.Write(b); err != nil {
			return fmt.Errorf("writing %s: %w", l.stream, err)
		}
		r.written += int64(len(b))
	}
	if limited {
		return errLimit
	}
	return nil
}

// ring keeps the last max lines pushed into it.
type ring struct {
	max   int64
	buf   []*line
	start int // index of the oldest line once buf is full
}

func (q *ring) push(l *line) {
	if q.max == 0 {
		return
	}
	if int64(len(q.buf)) < q.max {
		q.buf = append(q.buf, l)
		return
	}
	q.buf[q.start] = l
	q.start = (q.start + 1) % len(q.buf)
}

func (q *ring) lines() []*line {
	return append(q.buf[q.start:len(q.buf):len(q.buf)], q.buf[:q.start]...)
}
