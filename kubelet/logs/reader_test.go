package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
)

// sampleLog is a log with both streams, a split line, and an unfinished
// last line, one record per second from base.
const sampleLog = "" +
	"2024-05-01T12:00:00Z stdout F one\n" +
	"2024-05-01T12:00:01Z stderr F warn\n" +
	"2024-05-01T12:00:02Z stdout P tw\n" +
	"2024-05-01T12:00:03Z stderr F again\n" +
	"2024-05-01T12:00:04Z stdout F o\n" +
	"not a record\n" +
	"2024-05-01T12:00:05Z stdout F three\n" +
	"2024-05-01T12:00:06Z stdout P four\n" +
	"2024-05-01T12:00:07Z stdout F half a rec" // still being written: ignored

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	writeFile(t, path, sampleLog)
	for _, tc := range []struct {
		name      string
		opts      ReadOptions
		out, errs string
	}{
		{"all", ReadOptions{Tail: -1}, "one\ntwo\nthree\nfour", "warn\nagain\n"},
		{"tail 2", ReadOptions{Tail: 2}, "three\nfour", ""},
		// Lines count in the order they ended: "two" ends after "again".
		{"tail 3", ReadOptions{Tail: 3}, "two\nthree\nfour", ""},
		{"tail 4", ReadOptions{Tail: 4}, "two\nthree\nfour", "again\n"},
		{"tail 0", ReadOptions{Tail: 0}, "", ""},
		{"tail more than there is", ReadOptions{Tail: 100}, "one\ntwo\nthree\nfour", "warn\nagain\n"},
		// A joined line has the time of its first record.
		{"since", ReadOptions{Tail: -1, Since: base.Add(2 * time.Second)}, "two\nthree\nfour", "again\n"},
		{"since and tail", ReadOptions{Tail: 1, Since: base.Add(time.Second)}, "four", ""},
		{"timestamps", ReadOptions{Tail: 2, Timestamps: true},
			"2024-05-01T12:00:05Z three\n2024-05-01T12:00:06Z four", ""},
		{"limit", ReadOptions{Tail: -1, LimitBytes: 6}, "one\n", "wa"},
		{"limit exact", ReadOptions{Tail: -1, LimitBytes: 4}, "one\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			if err := Read(context.Background(), path, tc.opts, &out, &errs, nil); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.out || errs.String() != tc.errs {
				t.Errorf("got stdout %q stderr %q, want %q and %q", out.String(), errs.String(), tc.out, tc.errs)
			}
		})
	}
}

func TestReadMissing(t *testing.T) {
	err := Read(context.Background(), filepath.Join(t.TempDir(), "0.log"), ReadOptions{Tail: -1}, &bytes.Buffer{}, &bytes.Buffer{}, nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want an error matching os.ErrNotExist", err)
	}
}

// Reading what a Writer wrote gives back the text, long lines included.
func TestWriteThenRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	w := newTestWriter(t, path, 0)
	long := strings.Repeat("0123456789", 5000)
	write(t, w, "stdout", "short\n"+long+"\nend")
	write(t, w, "stderr", long[:100]+"\n")
	w.Close()
	var out, errs bytes.Buffer
	if err := Read(context.Background(), path, ReadOptions{Tail: -1}, &out, &errs, nil); err != nil {
		t.Fatal(err)
	}
	if out.String() != "short\n"+long+"\nend" || errs.String() != long[:100]+"\n" {
		t.Errorf("text read back differs from text written (stdout %d bytes, stderr %d bytes)", out.Len(), errs.Len())
	}
}

// The rotated file is read before the current one, and Tail spans both.
func TestReadAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	w := newTestWriter(t, path, 300)
	var want []string
	for i := range 20 {
		write(t, w, "stdout", fmt.Sprintf("line %02d\n", i))
		want = append(want, fmt.Sprintf("line %02d\n", i))
	}
	w.Close()
	if _, err := os.Stat(path + ".1"); err != nil {
		t.Fatalf("no rotated file: %v", err)
	}
	cur := parseAll(t, readFile(t, path))
	var out bytes.Buffer
	tail := int64(len(cur) + 2) // reaches into the rotated file
	if err := Read(context.Background(), path, ReadOptions{Tail: tail}, &out, &bytes.Buffer{}, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), strings.Join(want[len(want)-int(tail):], ""); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// syncBuffer is a bytes.Buffer that a test may read while Read writes.
type syncBuffer struct {
	// mu guards buf.
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func contains(b *syncBuffer, s string) func() (bool, error) {
	return func() (bool, error) {
		got := b.String()
		return strings.Contains(got, s), fmt.Errorf("output so far: %q", got)
	}
}

// Follow sees lines written after it started, keeps going through a
// rotation, and ends once done reports true and the file is drained.
func TestFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	w := newTestWriter(t, path, 400)
	write(t, w, "stdout", "before 1\nbefore 2\n")

	var out, errs syncBuffer
	var exited atomic.Bool
	result := make(chan error, 1)
	go func() {
		result <- Read(testenv.Context(t), path, ReadOptions{Follow: true, Tail: 1}, &out, &errs, exited.Load)
	}()
	wait.For(t, 10*time.Second, "the tail", contains(&out, "before 2\n"))

	write(t, w, "stdout", "after\n")
	write(t, w, "stderr", "err after\n")
	wait.For(t, 10*time.Second, "a new stdout line", contains(&out, "after\n"))
	wait.For(t, 10*time.Second, "a new stderr line", contains(&errs, "err after\n"))

	// Enough lines to rotate the file several times over; only the last
	// rotation's worth is guaranteed to be on disk, but a follower that
	// keeps up sees them all (it is waited for after each rotation).
	var want strings.Builder
	want.WriteString("before 2\nafter\n")
	for i := range 60 {
		l := fmt.Sprintf("rotating %02d\n", i)
		want.WriteString(l)
		before := rotatedInode(path)
		write(t, w, "stdout", l)
		if rotatedInode(path) != before {
			wait.For(t, 10*time.Second, "the line before the rotation", contains(&out, fmt.Sprintf("rotating %02d\n", i)))
		}
	}
	wait.For(t, 10*time.Second, "lines after rotations", contains(&out, "rotating 59\n"))

	// The container prints a last unfinished line and exits.
	write(t, w, "stdout", "bye")
	want.WriteString("bye")
	w.Close()
	exited.Store(true)
	select {
	case err := <-result:
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
	case <-testenv.Context(t).Done():
		t.Fatal("Read did not return after the container exited")
	}
	if got := out.String(); got != want.String() {
		t.Errorf("stdout:\n%q\nwant:\n%q", got, want.String())
	}
	if got := errs.String(); got != "err after\n" {
		t.Errorf("stderr: got %q, want %q", got, "err after\n")
	}
}

// rotatedInode identifies the current rotated file (0 when none).
func rotatedInode(path string) uint64 {
	st, err := os.Stat(path + ".1")
	if err != nil {
		return 0
	}
	return fileID(st)
}

// Follow returns the context's error when the context ends, and can start
// before the file exists as long as the rotated one does.
func TestFollowCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	writeFile(t, path, "2024-05-01T12:00:00Z stdout F hi\n")
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	result := make(chan error, 1)
	go func() {
		result <- Read(ctx, path, ReadOptions{Follow: true, Tail: -1}, &out, &out, nil)
	}()
	wait.For(t, 10*time.Second, "the first line", contains(&out, "hi\n"))
	cancel()
	select {
	case err := <-result:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want %v", err, context.Canceled)
		}
	case <-testenv.Context(t).Done():
		t.Fatal("Read did not return after the context ended")
	}
}

// A follower that reaches the limit stops without waiting for more.
func TestFollowLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	writeFile(t, path, sampleLog)
	var out bytes.Buffer
	err := Read(testenv.Context(t), path, ReadOptions{Follow: true, Tail: -1, LimitBytes: 3}, &out, &out, nil)
	if err != nil || out.String() != "one" {
		t.Errorf("got %q, %v; want %q, nil", out.String(), err, "one")
	}
}
