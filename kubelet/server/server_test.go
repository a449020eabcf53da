package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/skiffdev/skiff/internal/grpcerr"
	"github.com/skiffdev/skiff/internal/pki"
	"github.com/skiffdev/skiff/kubelet/server"
	"github.com/skiffdev/skiff/kubelet/server/servertest"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// kubelet starts a server over host and returns a client of it with the
// API server's kubelet-client identity.
func kubelet(t *testing.T, host server.Host) skiffv1.KubeletClient {
	t.Helper()
	ca := newCA(t)
	port := servertest.Start(t, host, ca, ca, "node-1")
	return kubeletClient(t, port, clientTLS(t, ca, ca, pki.KubeletClientUser))
}

func newCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA("test-ca", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// clientTLS trusts ca and, when user is not empty, presents a client
// certificate for user signed by signer.
func clientTLS(t *testing.T, ca, signer *pki.CA, user string, groups ...string) *tls.Config {
	t.Helper()
	tc := &tls.Config{RootCAs: ca.Pool()}
	if user != "" {
		kp, err := signer.Issue(pki.Leaf{CommonName: user, Organization: groups, Usage: pki.ClientAuth}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cert, err := kp.TLS()
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{*cert}
	}
	return tc
}

func kubeletClient(t *testing.T, port int, tc *tls.Config) skiffv1.KubeletClient {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///127.0.0.1:"+strconv.Itoa(port), grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return skiffv1.NewKubeletClient(conn)
}

// TestOnlyTheAPIServerIsLetIn checks the kubelet port's access rules:
// without a certificate of the cluster CA a caller is refused at the
// handshake; with one, only the API server's kubelet-client identity may
// read logs or exec — not a node, not even the admin.
func TestOnlyTheAPIServerIsLetIn(t *testing.T) {
	ca := newCA(t)
	other := newCA(t)
	host := servertest.NewHost(t)
	host.Log(t, "default", "pod", "c", false).Stdout("hello\n")
	host.ExecFunc = func(context.Context, string, string, string, server.ExecOptions) (int, error) { return 0, nil }
	port := servertest.Start(t, host, ca, ca, "node-1")

	tests := []struct {
		name string
		tls  *tls.Config
		// code is the gRPC code, want a part of the message: a refusal at
		// the handshake shows as Unavailable, with whatever the transport
		// saw first (an alert, a broken pipe).
		code codes.Code
		want string
	}{
		{"no client certificate", clientTLS(t, ca, ca, ""), codes.Unavailable, ""},
		{"a certificate of another CA", clientTLS(t, ca, other, pki.KubeletClientUser), codes.Unavailable, ""},
		{"a node's certificate", clientTLS(t, ca, ca, "system:node:node-2", pki.NodesGroup), codes.PermissionDenied, "Forbidden (user=system:node:node-2, verb=%s, resource=nodes, subresource=proxy)"},
		{"the admin's certificate", clientTLS(t, ca, ca, "system:admin", "system:masters"), codes.PermissionDenied, "Forbidden (user=system:admin, verb=%s, resource=nodes, subresource=proxy)"},
		{"the API server", clientTLS(t, ca, ca, pki.KubeletClientUser), codes.OK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := kubeletClient(t, port, tt.tls)
			ctx := testContext(t)
			logErr := logsOnce(ctx, k)
			execErr := execOnce(ctx, k)
			// Reading a log is a get, running a command a create.
			for what, r := range map[string]struct {
				err  error
				verb string
			}{"logs": {logErr, "get"}, "exec": {execErr, "create"}} {
				want := tt.want
				if strings.Contains(want, "%s") {
					want = fmt.Sprintf(want, r.verb)
				}
				if got := status.Code(r.err); got != tt.code || (r.err != nil && !strings.Contains(r.err.Error(), want)) {
					t.Errorf("%s: got %v (%v), want %v containing %q", what, got, r.err, tt.code, want)
				}
			}
		})
	}
}

// logsOnce reads a container's log and returns the stream's error as
// gRPC returned it.
func logsOnce(ctx context.Context, k skiffv1.KubeletClient) error {
	stream, err := k.ContainerLogs(ctx, &skiffv1.PodLogsRequest{Namespace: "default", Pod: "pod", Container: "c"})
	if err != nil {
		return err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// execOnce runs one command without input and returns the stream's error.
func execOnce(ctx context.Context, k skiffv1.KubeletClient) error {
	stream, err := k.ContainerExec(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&skiffv1.ExecInput{Input: &skiffv1.ExecInput_Start{Start: &skiffv1.ExecStart{Namespace: "default", Pod: "pod", Container: "c", Command: []string{"true"}}}}); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// readLogs reads a ContainerLogs stream to its end: stdout text, stderr
// text, and the error (converted as the client does).
func readLogs(ctx context.Context, k skiffv1.KubeletClient, req *skiffv1.PodLogsRequest) (string, string, error) {
	stream, err := k.ContainerLogs(ctx, req)
	if err != nil {
		return "", "", grpcerr.FromStatus(err)
	}
	var out, errOut strings.Builder
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out.String(), errOut.String(), nil
		}
		if err != nil {
			return out.String(), errOut.String(), grpcerr.FromStatus(err)
		}
		if chunk.GetStderr() {
			errOut.Write(chunk.GetData())
		} else {
			out.Write(chunk.GetData())
		}
	}
}

func TestContainerLogs(t *testing.T) {
	host := servertest.NewHost(t)
	k := kubelet(t, host)
	ctx := testContext(t)
	l := host.Log(t, "ns", "pod", "c", false)
	l.Stdout("out 1\n")
	l.Stderr("err 1\n")
	big := strings.Repeat("x", 100<<10)
	l.Stdout(big + "\n")

	out, errOut, err := readLogs(ctx, k, &skiffv1.PodLogsRequest{Namespace: "ns", Pod: "pod", Container: "c"})
	if err != nil || out != "out 1\n"+big+"\n" || errOut != "err 1\n" {
		t.Errorf("got %d bytes of stdout, %q, %v", len(out), errOut, err)
	}

	// Follow ends once the run has exited and the log is drained.
	f := host.Log(t, "ns", "pod", "f", false)
	f.Stdout("old\nnew\n")
	stream, err := k.ContainerLogs(ctx, &skiffv1.PodLogsRequest{Namespace: "ns", Pod: "pod", Container: "f", Follow: true, TailLines: new(int64(1))})
	if err != nil {
		t.Fatal(err)
	}
	var followed []string
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		followed = append(followed, string(chunk.GetData()))
		if len(followed) == 1 {
			// The follower is reading: now the run prints and ends.
			f.Stdout("later\n")
			f.Exit()
		}
	}
	if got := strings.Join(followed, ""); got != "new\nlater\n" {
		t.Errorf("follow: got %q", got)
	}

	for _, tc := range []struct {
		name string
		req  *skiffv1.PodLogsRequest
		is   func(error) bool
		want string
	}{
		{"missing log", &skiffv1.PodLogsRequest{Namespace: "ns", Pod: "pod", Container: "d"}, apierrors.IsNotFound, `no log for container "d" of pod ns/pod: file does not exist`},
		{"missing previous", &skiffv1.PodLogsRequest{Namespace: "ns", Pod: "pod", Container: "c", Previous: true}, apierrors.IsBadRequest, `previous terminated container "c" in pod "pod" not found`},
		{"negative tail", &skiffv1.PodLogsRequest{Namespace: "ns", Pod: "pod", Container: "c", TailLines: new(int64(-1))}, apierrors.IsBadRequest, "tailLines must be greater than or equal to 0"},
		{"zero limit", &skiffv1.PodLogsRequest{Namespace: "ns", Pod: "pod", Container: "c", LimitBytes: new(int64(0))}, apierrors.IsBadRequest, "limitBytes must be greater than 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readLogs(ctx, k, tc.req)
			if err == nil || !tc.is(err) || err.Error() != tc.want {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestContainerExec(t *testing.T) {
	host := servertest.NewHost(t)
	k := kubelet(t, host)
	ctx := testContext(t)
	host.ExecFunc = func(ctx context.Context, ns, pod, c string, opts server.ExecOptions) (int, error) {
		switch opts.Args[0] {
		case "missing":
			return 0, apierrors.NewBadRequest(`container "c" in pod "pod" is not running`)
		case "big":
			opts.Stdout.Write(bytes.Repeat([]byte("y"), 200<<10))
			return 7, nil
		}
		return 0, nil
	}
	run := func(msgs ...*skiffv1.ExecInput) (stdout []byte, exit *skiffv1.ExecExit, err error) {
		stream, err := k.ContainerExec(ctx)
		if err != nil {
			return nil, nil, err
		}
		for _, m := range msgs {
			if err := stream.Send(m); err != nil {
				break
			}
		}
		stream.CloseSend()
		for {
			out, err := stream.Recv()
			if err != nil {
				return stdout, nil, grpcerr.FromStatus(err)
			}
			if out.GetExit() != nil {
				return stdout, out.GetExit(), nil
			}
			if len(out.GetStdout()) > 32<<10 {
				t.Errorf("a message of %d bytes", len(out.GetStdout()))
			}
			stdout = append(stdout, out.GetStdout()...)
		}
	}
	start := func(cmd ...string) *skiffv1.ExecInput {
		return &skiffv1.ExecInput{Input: &skiffv1.ExecInput_Start{Start: &skiffv1.ExecStart{Namespace: "ns", Pod: "pod", Container: "c", Command: cmd}}}
	}

	out, exit, err := run(start("big"))
	if err != nil || len(out) != 200<<10 || exit.GetCode() != 7 {
		t.Errorf("got %d bytes, %v, %v", len(out), exit, err)
	}
	_, _, err = run(start("missing"))
	if !apierrors.IsBadRequest(err) || err.Error() != `container "c" in pod "pod" is not running` {
		t.Errorf("API error from the host: got %v", err)
	}
	_, _, err = run(&skiffv1.ExecInput{Input: &skiffv1.ExecInput_Stdin{Stdin: []byte("x")}})
	if !apierrors.IsBadRequest(err) || err.Error() != "the first message of an exec stream must be a start" {
		t.Errorf("no start: got %v", err)
	}
	_, _, err = run(start())
	if !apierrors.IsBadRequest(err) {
		t.Errorf("no command: got %v", err)
	}
	_, _, err = run()
	if !apierrors.IsBadRequest(err) {
		t.Errorf("empty stream: got %v", err)
	}
}
