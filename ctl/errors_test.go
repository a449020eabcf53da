package ctl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffdev/skiff/internal/grpcerr"
	"github.com/skiffdev/skiff/internal/testenv"
)

func TestFormatError(t *testing.T) {
	notFound := apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "web-1")
	refused := grpcerr.FromStatus(status.Error(codes.Unavailable,
		`connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`))
	unresolved := grpcerr.FromStatus(status.Error(codes.Unavailable, "name resolver error: produced zero addresses"))
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"plain", errors.New("must specify -f"), "error: must specify -f"},
		{"from the server", notFound, `Error from server (NotFound): pods "web-1" not found`},
		{"wrapped", fmt.Errorf("get: %w", notFound), `Error from server (NotFound): pods "web-1" not found`},
		{"interrupted", context.Canceled, ""},
		{"interrupted, wrapped", fmt.Errorf("list pods: %w", context.Canceled), ""},
		{"refused", &serverError{server: "127.0.0.1:1", err: refused},
			"The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?"},
		{"refused, no address", refused, "The connection to the server was refused - did you specify the right host or port?"},
		{"not resolved", &serverError{server: "nowhere:6443", err: unresolved},
			"Unable to connect to the server nowhere:6443: name resolver error: produced zero addresses"},
		{"several", errorList{notFound, errors.New("boom"), context.Canceled},
			"Error from server (NotFound): pods \"web-1\" not found\nerror: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatError(tt.err); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// closedAddress returns a loopback address where nothing listens.
func closedAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestServerDown runs every verb that talks to the server against an
// address where none listens: each says so in kubectl's words, once.
func TestServerDown(t *testing.T) {
	addr := closedAddress(t)
	manifest := podYAML("a") + "---\n" + podYAML("b")
	want := "The connection to the server " + addr + " was refused - did you specify the right host or port?"
	for _, args := range [][]string{
		{"version"},
		{"get", "pods"},
		{"get", "pods", "a", "b"},
		{"get", "pods", "-w"},
		{"describe", "pods", "a", "b"},
		{"apply", "-f", "-"},
		{"create", "-f", "-"},
		{"delete", "-f", "-"},
		{"delete", "pods", "a", "b"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, errOut, err := ctlRun(t, addr, manifest, args...)
			if got := FormatError(err); got != want || errOut != "" {
				t.Errorf("got error %q, stderr %q; want %q and nothing on stderr", got, errOut, want)
			}
		})
	}
}

// TestInterrupted runs verbs with a context that is cancelled already,
// as after Ctrl-C: each ends with an error that FormatError leaves
// unsaid (skiffctl exits 1 without a message), or, for a watch, quietly.
func TestInterrupted(t *testing.T) {
	srv := testenv.StartServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, args := range [][]string{
		{"version"},
		{"get", "pods"},
		{"get", "pods", "-w"},
		{"describe", "pods"},
		{"apply", "-f", "-"},
		{"create", "-f", "-"},
		{"delete", "pods", "a"},
		{"delete", "-f", "-"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, errOut, err := ctlRunContext(ctx, srv.Addr(), podYAML("a"), args...)
			if msg := FormatError(err); msg != "" || strings.Contains(errOut, "cancel") {
				t.Errorf("got stdout %q, stderr %q, error %q; want nothing said", out, errOut, msg)
			}
		})
	}
}
