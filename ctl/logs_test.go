package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
	"github.com/skiffdev/skiff/kubelet/server"
	"github.com/skiffdev/skiff/kubelet/server/servertest"
)

// streamCluster is an API server with a fake kubelet (node-1) on
// loopback, and an admin kubeconfig for it.
func streamCluster(t *testing.T) (string, *client.Client, *servertest.Host) {
	t.Helper()
	srv := testenv.StartServer(t)
	kubeconfig := ctlKubeconfig(t, srv)
	c := testenv.NewClient(t, srv)
	host := servertest.NewHost(t)
	servertest.RegisterNode(t, c, "node-1", servertest.Start(t, host, srv.KubeletServingCA(), srv.CA(), "node-1"))
	return kubeconfig, c, host
}

func TestLogs(t *testing.T) {
	kubeconfig, c, host := streamCluster(t)
	servertest.RunningPod(t, c, "default", "web", "node-1", "app")
	servertest.RunningPod(t, c, "default", "two", "node-1", "a", "b")
	l := host.Log(t, "default", "web", "app", false)
	l.Stdout("one\ntwo\n")
	l.Stderr("three\n")
	prev := host.Log(t, "default", "web", "app", true)
	prev.Stdout("earlier\n")
	host.Log(t, "default", "two", "b", false).Stdout("from b\n")

	run := func(want string, args ...string) {
		t.Helper()
		out, errOut, err := ctlRun(t, kubeconfig, "", args...)
		if err != nil || out != want {
			t.Errorf("%v: got %q, %v (stderr %q); want %q", args, out, err, errOut, want)
		}
	}
	fails := func(want string, args ...string) {
		t.Helper()
		_, _, err := ctlRun(t, kubeconfig, "", args...)
		if got := FormatError(err); got != want {
			t.Errorf("%v: error %q, want %q", args, got, want)
		}
	}
	run("one\ntwo\nthree\n", "logs", "web")
	run("three\n", "logs", "web", "--tail", "1")
	run("one\ntwo\nthree\n", "logs", "pod/web", "-c", "app", "--since", "1h")
	run("one\n", "logs", "po/web", "--limit-bytes", "4")
	run("earlier\n", "logs", "web", "-p")
	run("earlier\n", "logs", "web", "--previous")
	run("from b\n", "logs", "two", "b")
	run("from b\n", "logs", "two", "-c", "b")
	run("", "logs", "web", "--since-time", "2999-01-01T00:00:00Z")
	out, _, err := ctlRun(t, kubeconfig, "", "logs", "web", "--timestamps", "--tail=1")
	if err != nil || !strings.HasSuffix(out, "Z three\n") {
		t.Errorf("--timestamps: got %q, %v", out, err)
	}

	fails(`Error from server (NotFound): pods "nope" not found`, "logs", "nope")
	fails(`Error from server (BadRequest): a container name must be specified for pod two, choose one of: [a b]`, "logs", "two")
	fails(`Error from server (BadRequest): container c is not valid for pod two`, "logs", "two", "-c", "c")
	fails("error: at most one of `sinceTime` or `sinceSeconds` may be specified", "logs", "web", "--since", "1m", "--since-time", "2024-01-01T00:00:00Z")
	fails("error: expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a required argument for the logs command", "logs")
	fails(`error: cannot find the pods of service "web": only pods, deployments, replica sets and jobs are supported`, "logs", "svc/web")

	t.Run("follow", func(t *testing.T) {
		servertest.RunningPod(t, c, "default", "tailed", "node-1", "app")
		l := host.Log(t, "default", "tailed", "app", false)
		l.Stdout("first\n")
		var out syncBuffer
		done := make(chan error, 1)
		go func() {
			o := DefaultOptions()
			o.Streams = Streams{In: strings.NewReader(""), Out: &out, ErrOut: io.Discard}
			o.Kubeconfig = kubeconfig
			cmd := NewCommand(o)
			cmd.SetArgs([]string{"logs", "-f", "tailed"})
			done <- cmd.ExecuteContext(testenv.Context(t))
			o.Close()
		}()
		wait.For(t, 10*time.Second, "the first line", func() (bool, error) { return out.String() == "first\n", nil })
		l.Stdout("second\n")
		l.Exit()
		if err := <-done; err != nil || out.String() != "first\nsecond\n" {
			t.Errorf("got %q, %v", out.String(), err)
		}
	})

	t.Run("deployment", func(t *testing.T) {
		ctx := testenv.Context(t)
		labels := map[string]string{"app": "api"}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "default"},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
				},
			},
		}
		if _, err := c.Deployments("default").Create(ctx, d); err != nil {
			t.Fatal(err)
		}
		for i, name := range []string{"api-1", "api-2"} {
			p := servertest.RunningPod(t, c, "default", name, "node-1", "app")
			p.Labels = labels
			if _, err := c.Pods("default").Update(ctx, p); err != nil {
				t.Fatal(err)
			}
			host.Log(t, "default", name, "app", false).Stdout(fmt.Sprintf("pod %d\n", i+1))
		}
		out, errOut, err := ctlRun(t, kubeconfig, "", "logs", "deploy/api")
		if err != nil || out != "pod 1\n" || errOut != "Found 2 pods, using pod/api-1\n" {
			t.Errorf("got %q, %q, %v", out, errOut, err)
		}
	})
}

func TestExec(t *testing.T) {
	kubeconfig, c, host := streamCluster(t)
	servertest.RunningPod(t, c, "default", "web", "node-1", "app")
	host.ExecFunc = func(ctx context.Context, ns, pod, container string, opts server.ExecOptions) (int, error) {
		switch opts.Args[0] {
		case "cat":
			if opts.Stdin != nil {
				io.Copy(opts.Stdout, opts.Stdin)
			}
			return 0, nil
		case "echo":
			fmt.Fprintln(opts.Stdout, strings.Join(opts.Args[1:], " "))
			fmt.Fprintln(opts.Stderr, "to stderr")
			return 0, nil
		case "tty":
			fmt.Fprintf(opts.Stdout, "tty=%t stdin=%t", opts.TTY, opts.Stdin != nil)
			return 0, nil
		case "exit":
			var code int
			fmt.Sscan(opts.Args[1], &code)
			return code, nil
		}
		return -1, fmt.Errorf("%q: executable file not found in $PATH", opts.Args[0])
	}
	run := func(stdin, want, wantErr string, args ...string) {
		t.Helper()
		out, errOut, err := ctlRun(t, kubeconfig, stdin, args...)
		if err != nil || out != want || errOut != wantErr {
			t.Errorf("%v: got %q, %q, %v; want %q, %q", args, out, errOut, err, want, wantErr)
		}
	}
	fails := func(want string, args ...string) {
		t.Helper()
		_, _, err := ctlRun(t, kubeconfig, "", args...)
		if got := FormatError(err); got != want {
			t.Errorf("%v: error %q, want %q", args, got, want)
		}
	}
	run("", "hello world\n", "to stderr\n", "exec", "web", "--", "echo", "hello", "world")
	run("typed\n", "typed\n", "", "exec", "-i", "web", "--", "cat")
	run("typed\n", "", "", "exec", "web", "--", "cat") // no -i: no input
	run("", "tty=false stdin=true", "Unable to use a TTY - input is not a terminal or the right kind of file\n", "exec", "-it", "web", "--", "tty")
	run("", "tty=false stdin=true", "", "exec", "-itq", "web", "--", "tty")
	run("", "tty=false stdin=false", "", "exec", "-t", "web", "--", "tty")

	_, _, err := ctlRun(t, kubeconfig, "", "exec", "web", "--", "exit", "3")
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != 3 || FormatError(err) != "command terminated with exit code 3" {
		t.Errorf("exit 3: got %v", err)
	}
	fails(`Error from server (InternalError): Internal error occurred: error executing command in container: "nope": executable file not found in $PATH`, "exec", "web", "--", "nope")
	fails(`Error from server (NotFound): pods "nope" not found`, "exec", "nope", "--", "true")
	fails("error: you must specify at least one command for the container", "exec", "web", "--")
	fails("error: exec (POD | TYPE/NAME) COMMAND is not supported; write the command after --: skiffctl exec POD -- COMMAND [args...]", "exec", "web", "date")
	fails("error: expected 'exec (POD | TYPE/NAME) COMMAND [ARG1] [ARG2] ... [ARGN]'.\nPOD or TYPE/NAME and COMMAND are required arguments for the exec command", "exec", "--", "date")
}
