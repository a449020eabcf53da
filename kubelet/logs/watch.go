package logs

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// pollInterval bounds how long a follower sleeps without news: done() is
// asked this often, and without inotify it is how often the file is polled.
const pollInterval = 250 * time.Millisecond

// watcher wakes a following reader when something changes in the log's
// directory: a write, a rename, a new file. Events are only hints (the
// directory may hold other files), so a wake-up just means "look again".
type watcher struct {
	f      *os.File      // the inotify descriptor; nil when inotify is unavailable
	events chan struct{} // one buffered wake-up
	ticker *time.Ticker
}

func newWatcher(dir string) *watcher {
	w := &watcher{events: make(chan struct{}, 1), ticker: time.NewTicker(pollInterval)}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return w
	}
	const mask = unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_CREATE |
		unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return w
	}
	// A non-blocking descriptor in an *os.File goes through Go's poller, so
	// Close wakes the goroutine blocked in Read.
	w.f = os.NewFile(uintptr(fd), "inotify")
	go w.loop()
	return w
}

func (w *watcher) loop() {
	buf := make([]byte, 4096)
	for {
		if _, err := w.f.Read(buf); err != nil {
			return // closed
		}
		select {
		case w.events <- struct{}{}:
		default: // a wake-up is already waiting
		}
	}
}

// wait returns when the directory changed, when the poll interval passed,
// or with ctx's error when ctx ends.
func (w *watcher) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-w.events:
	case <-w.ticker.C:
	}
	return nil
}

func (w *watcher) close() {
	w.ticker.Stop()
	if w.f != nil {
		w.f.Close()
	}
}
