package logs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock returns a clock that starts at base and moves one second on
// every call, so each record gets its own, predictable time.
func fakeClock(base time.Time) func() time.Time {
	// mu guards t. The Writer reads its clock under its own lock today;
	// this one stays safe should that change.
	var mu sync.Mutex
	t := base.Add(-time.Second)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

var base = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func newTestWriter(t *testing.T, path string, maxBytes int64) *Writer {
	t.Helper()
	w, err := NewWriter(path, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	w.now = fakeClock(base)
	t.Cleanup(func() { w.Close() })
	return w
}

func write(t *testing.T, w *Writer, stream, text string) {
	t.Helper()
	n, err := w.Stream(stream).Write([]byte(text))
	if err != nil || n != len(text) {
		t.Fatalf("writing %q to %s: n=%d err=%v", text, stream, n, err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriterFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "0.log") // directory is created
	w := newTestWriter(t, path, 0)
	write(t, w, "stdout", "hello\nwor")
	write(t, w, "stderr", "oops\n")
	write(t, w, "stdout", "ld\n\nno newline")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := readFile(t, path)
	want := "" +
		"2024-05-01T12:00:00Z stdout F hello\n" +
		"2024-05-01T12:00:01Z stderr F oops\n" +
		"2024-05-01T12:00:02Z stdout F world\n" +
		"2024-05-01T12:00:02Z stdout F \n" +
		"2024-05-01T12:00:03Z stdout P no newline\n"
	if got != want {
		t.Errorf("file:\n%s\nwant:\n%s", got, want)
	}
	if _, err := w.Stream("stdout").Write([]byte("late\n")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("write after Close: got %v, want %v", err, os.ErrClosed)
	}
}

func TestWriterAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	for _, text := range []string{"one\n", "two\n"} {
		w := newTestWriter(t, path, 0)
		write(t, w, "stdout", text)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Count(readFile(t, path), "\n"); got != 2 {
		t.Errorf("got %d records, want 2", got)
	}
}

func TestWriterSplitsLongLines(t *testing.T) {
	long := strings.Repeat("a", maxRecordText) + strings.Repeat("b", maxRecordText) + "ccc"
	for _, tc := range []struct {
		name   string
		writes []string
	}{
		{"one write", []string{long + "\n"}},
		{"byte pieces", chunks(long+"\n", 1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "0.log")
			w := newTestWriter(t, path, 0)
			for _, s := range tc.writes {
				write(t, w, "stdout", s)
			}
			w.Close()
			recs := parseAll(t, readFile(t, path))
			var tags, texts []string
			for _, r := range recs {
				tags = append(tags, map[bool]string{true: "P", false: "F"}[r.partial])
				texts = append(texts, string(r.text))
			}
			if got := strings.Join(tags, ""); got != "PPF" {
				t.Errorf("tags: got %s, want PPF", got)
			}
			if got := strings.Join(texts, ""); got != long {
				t.Errorf("joined text differs from the line written (len %d, want %d)", len(got), len(long))
			}
			for _, r := range recs {
				if len(r.text) > maxRecordText {
					t.Errorf("record of %d bytes, want at most %d", len(r.text), maxRecordText)
				}
			}
		})
	}
}

// A line of exactly one record's size is one full record, however it arrives.
func TestWriterExactRecordSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	w := newTestWriter(t, path, 0)
	write(t, w, "stdout", strings.Repeat("x", maxRecordText))
	write(t, w, "stdout", "\n")
	w.Close()
	recs := parseAll(t, readFile(t, path))
	if len(recs) != 1 || recs[0].partial || len(recs[0].text) != maxRecordText {
		t.Errorf("got %d records (first partial=%v), want one full record", len(recs), len(recs) > 0 && recs[0].partial)
	}
}

func TestWriterConcurrentStreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	w := newTestWriter(t, path, 0)
	const n = 500
	var wg sync.WaitGroup
	for _, stream := range []string{"stdout", "stderr"} {
		wg.Go(func() {
			out := w.Stream(stream)
			for i := range n {
				// Lines cut across writes, to mix pending text with records
				// of the other stream.
				fmt.Fprintf(out, "%s line", stream)
				fmt.Fprintf(out, " %d\n", i)
			}
		})
	}
	wg.Wait()
	w.Close()
	next := map[string]int{}
	for _, r := range parseAll(t, readFile(t, path)) {
		want := fmt.Sprintf("%s line %d", r.stream, next[r.stream])
		if string(r.text) != want || r.partial {
			t.Fatalf("got record %q (partial %v), want %q", r.text, r.partial, want)
		}
		next[r.stream]++
	}
	if next["stdout"] != n || next["stderr"] != n {
		t.Errorf("got %v lines, want %d per stream", next, n)
	}
}

func TestWriterRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	const max = 200
	w := newTestWriter(t, path, max)
	for i := range 50 {
		write(t, w, "stdout", fmt.Sprintf("line %02d\n", i))
	}
	w.Close()
	cur, old := readFile(t, path), readFile(t, path+".1")
	for name, s := range map[string]string{"current": cur, "rotated": old} {
		if len(s) > max || len(s) == 0 {
			t.Errorf("%s file has %d bytes, want 1..%d", name, len(s), max)
		}
	}
	// The two files together end with the last lines, without a gap.
	recs := parseAll(t, old+cur)
	for i, r := range recs {
		want := fmt.Sprintf("line %02d", 50-len(recs)+i)
		if string(r.text) != want {
			t.Fatalf("record %d: got %q, want %q", i, r.text, want)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 2 {
		t.Errorf("got %d files, want 2 (one rotated file kept)", len(entries))
	}
}

func chunks(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

func parseAll(t *testing.T, file string) []record {
	t.Helper()
	var recs []record
	for _, l := range bytes.SplitAfter([]byte(file), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		if l[len(l)-1] != '\n' {
			t.Fatalf("record without newline: %q", l)
		}
		r, err := parseRecord(l[:len(l)-1])
		if err != nil {
			t.Fatalf("record %q: %v", l, err)
		}
		recs = append(recs, r)
	}
	return recs
}
