package apiserver_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
)

// TestLogsThroughStartsLogger: the server logs through the logger of the
// context given to Start, with component=apiserver once per line, also
// from request handlers, whose contexts gRPC makes (a unary call and a
// stream, each refused for want of credentials).
func TestLogsThroughStartsLogger(t *testing.T) {
	var out syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := apiserver.Start(logging.Into(ctx, slog.New(slog.NewTextHandler(&out, nil))), testenv.ServerConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)

	anonymous := connect(t, srv, &tls.Config{RootCAs: srv.CA().Pool()}, "")
	if _, err := anonymous.Version(ctx); !apierrors.IsUnauthorized(err) {
		t.Errorf("version: got %v, want Unauthorized", err)
	}
	if w, err := anonymous.Pods("default").Watch(ctx, metav1.ListOptions{}); err == nil {
		for range w.ResultChan() { // an ERROR event (401), then the end
		}
		w.Stop()
	}
	unauthenticated := func() []string {
		var lines []string
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.Contains(l, `msg="request unauthenticated"`) {
				lines = append(lines, l)
			}
		}
		return lines
	}
	wait.For(t, 10*time.Second, "the unary call and the stream logged", func() (bool, error) {
		return len(unauthenticated()) == 2, nil
	})
	lines := unauthenticated()
	for _, l := range append(lines, firstLine(out.String(), `msg="api server ready"`)) {
		if n := strings.Count(l, "component=apiserver"); n != 1 {
			t.Errorf("line %q has component=apiserver %d times, want once", l, n)
		}
	}
	if !strings.Contains(lines[0], "method=/skiff.v1.API/Version") || !strings.Contains(lines[1], "method=/skiff.v1.API/Watch") {
		t.Errorf("got lines\n%s\nwant one for Version, then one for Watch", strings.Join(lines, "\n"))
	}
}

// firstLine is the first line of s that contains substr, or "".
func firstLine(s, substr string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			return l
		}
	}
	return ""
}
