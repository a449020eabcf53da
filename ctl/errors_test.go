package ctl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffdev/skiff/internal/clientconfig"
	"github.com/skiffdev/skiff/internal/grpcerr"
	"github.com/skiffdev/skiff/internal/pki"
	"github.com/skiffdev/skiff/internal/testenv"
)

func TestFormatError(t *testing.T) {
	notFound := apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "web-1")
	refused := grpcerr.FromStatus(status.Error(codes.Unavailable,
		`connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`))
	unresolved := grpcerr.FromStatus(status.Error(codes.Unavailable, "name resolver error: produced zero addresses"))
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "web-1",
		errors.New(`User "alice" cannot get resource "pods" in API group "" in the namespace "default"`))
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"plain", errors.New("must specify -f"), "error: must specify -f"},
		{"from the server", notFound, `Error from server (NotFound): pods "web-1" not found`},
		{"wrapped", fmt.Errorf("get: %w", notFound), `Error from server (NotFound): pods "web-1" not found`},
		{"unauthorized", apierrors.NewUnauthorized("Unauthorized"), "error: You must be logged in to the server (Unauthorized)"},
		{"unauthorized, through gRPC", grpcerr.FromStatus(status.Error(codes.Unauthenticated, "Unauthorized")),
			"error: You must be logged in to the server (Unauthorized)"},
		{"unauthorized, with a reason", fmt.Errorf("list pods: %w", apierrors.NewUnauthorized(`invalid join token: token "abcdef" does not exist`)),
			`error: You must be logged in to the server (invalid join token: token "abcdef" does not exist)`},
		{"forbidden", forbidden,
			`Error from server (Forbidden): pods "web-1" is forbidden: User "alice" cannot get resource "pods" in API group "" in the namespace "default"`},
		{"forbidden, through gRPC", grpcerr.FromStatus(status.Error(codes.PermissionDenied, "nodes is forbidden: User \"alice\" cannot list resource \"nodes\"")),
			`Error from server (Forbidden): nodes is forbidden: User "alice" cannot list resource "nodes"`},
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
	ca, err := pki.NewCA("skiff-ca", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := ctlKubeconfigWith(t, clientconfig.Credentials{Server: addr, CA: ca.CertPEM, User: "admin"})
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
			_, errOut, err := ctlRun(t, kubeconfig, manifest, args...)
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
	kubeconfig := ctlKubeconfig(t, srv)
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
			out, errOut, err := ctlRunContext(ctx, kubeconfig, podYAML("a"), args...)
			if msg := FormatError(err); msg != "" || strings.Contains(errOut, "cancel") {
				t.Errorf("got stdout %q, stderr %q, error %q; want nothing said", out, errOut, msg)
			}
		})
	}
}

// TestNotLoggedIn runs skiffctl against a server that does not accept
// its credentials: each verb says so in kubectl's words, once, since
// every other object would fail the same way.
func TestNotLoggedIn(t *testing.T) {
	t.Setenv(clientconfig.EnvKubeconfig, "")
	srv := testenv.StartServer(t)
	server := "https://" + srv.Addr()
	caFile := ctlFile(t, t.TempDir(), "ca.crt", string(srv.CA().CertPEM))
	noUser := ctlKubeconfigWith(t, clientconfig.Credentials{Server: server, CA: srv.CA().CertPEM, User: "nobody"})

	const notLoggedIn = "error: You must be logged in to the server ("
	tests := []struct {
		name       string
		kubeconfig string
		flags      []string
		want       string // the whole line, or its start when it ends in "("
	}{
		{"no credentials", "", []string{"--server", server, "--certificate-authority", caFile}, notLoggedIn + "Unauthorized)"},
		{"a kubeconfig without credentials", noUser, nil, notLoggedIn + "Unauthorized)"},
		{"a garbage token, the server unchecked", "", []string{"--server", server, "--insecure-skip-tls-verify", "--token", "garbage"}, notLoggedIn},
	}
	for _, tt := range tests {
		for _, args := range [][]string{
			{"version"},
			{"get", "pods"},
			{"get", "pods", "a", "b"},
			{"delete", "pods", "a", "b"},
			{"apply", "-f", "-"},
		} {
			t.Run(tt.name+"/"+strings.Join(args, " "), func(t *testing.T) {
				_, errOut, err := ctlRun(t, tt.kubeconfig, podYAML("a")+"---\n"+podYAML("b"), append(args, tt.flags...)...)
				got := FormatError(err)
				ok := got == tt.want
				if strings.HasSuffix(tt.want, "(") {
					ok = strings.HasPrefix(got, tt.want) && strings.HasSuffix(got, ")") && !strings.Contains(got, "\n")
				}
				if !ok || !apierrors.IsUnauthorized(err) || errOut != "" {
					t.Errorf("got error %q, stderr %q; want %q once and nothing on stderr", got, errOut, tt.want)
				}
			})
		}
	}

	// A server whose certificate the CA given did not sign cannot be
	// told from an impostor: no request is sent.
	t.Run("untrusted server", func(t *testing.T) {
		other, err := pki.NewCA("another-ca", time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		otherFile := ctlFile(t, t.TempDir(), "other-ca.crt", string(other.CertPEM))
		_, _, err = ctlRun(t, "", "", "get", "pods", "--server", server, "--certificate-authority", otherFile)
		got := FormatError(err)
		if want := "Unable to connect to the server " + srv.Addr() + ": "; !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "x509: certificate signed by unknown authority") {
			t.Errorf("got %q, want %q... certificate signed by unknown authority", got, want)
		}
	})

	// A user the server knows but lets do nothing is told so object by
	// object, as kubectl does.
	t.Run("forbidden", func(t *testing.T) {
		alice, err := srv.IssueClientCertificate("alice", "devs")
		if err != nil {
			t.Fatal(err)
		}
		kubeconfig := ctlKubeconfigWith(t, clientconfig.Credentials{Server: server, CA: srv.CA().CertPEM, CertPEM: alice.CertPEM, KeyPEM: alice.KeyPEM, User: "alice"})
		_, _, err = ctlRun(t, kubeconfig, "", "get", "pods")
		if got, want := FormatError(err), `Error from server (Forbidden): pods is forbidden: User "alice"`; !strings.HasPrefix(got, want) || !apierrors.IsForbidden(err) {
			t.Errorf("got %q, want it to start with %q", got, want)
		}
	})
}
