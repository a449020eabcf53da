package ctl

import (
	"testing"

	"github.com/skiffdev/skiff/internal/testenv"
)

func TestScale(t *testing.T) {
	srv := testenv.StartServer(t)
	kubeconfig := ctlKubeconfig(t, srv)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	ctlNamespace(t, c, "sc")
	d := rolloutDeployment(t, c, "sc", "web", "nginx:1", 1)
	rolloutReplicaSet(t, c, d, 1, "nginx:1", "")
	replicas := func(name string) int32 {
		t.Helper()
		d, err := c.Deployments("sc").Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return *d.Spec.Replicas
	}
	run := func(want string, args ...string) {
		t.Helper()
		out, errOut, err := ctlRun(t, kubeconfig, "", append(args, "-n", "sc")...)
		if err != nil || out != want {
			t.Errorf("%v: got %q, %v (stderr %q); want %q", args, out, err, errOut, want)
		}
	}
	fails := func(want string, args ...string) {
		t.Helper()
		_, _, err := ctlRun(t, kubeconfig, "", append(args, "-n", "sc")...)
		if got := FormatError(err); got != want {
			t.Errorf("%v: error %q, want %q", args, got, want)
		}
	}

	run("deployment.apps/web scaled\n", "scale", "deployment/web", "--replicas=3")
	if n := replicas("web"); n != 3 {
		t.Errorf("replicas %d, want 3", n)
	}
	run("deployment.apps/web scaled\n", "scale", "deploy", "web", "--replicas=5", "--current-replicas=3")
	if n := replicas("web"); n != 5 {
		t.Errorf("replicas %d, want 5", n)
	}
	fails("error: Expected replicas to be 3, was 5", "scale", "deploy", "web", "--replicas=1", "--current-replicas=3")
	live, err := c.Deployments("sc").Get(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	fails("error: Expected resource version to be 1, was "+live.ResourceVersion,
		"scale", "deploy/web", "--replicas=1", "--resource-version=1")
	if n := replicas("web"); n != 5 {
		t.Errorf("a failed precondition changed replicas to %d", n)
	}

	run("replicaset.apps/web-h1 scaled\n", "scale", "rs", "web-h1", "--replicas=2")
	rs, err := c.ReplicaSets("sc").Get(ctx, "web-h1")
	if err != nil || *rs.Spec.Replicas != 2 {
		t.Errorf("replica set: %v, %v", rs, err)
	}

	manifest := ctlFile(t, t.TempDir(), "web.yaml", deploymentYAML("web", "nginx:1", "", "", ""))
	run("deployment.apps/web scaled\n", "scale", "-f", manifest, "--replicas=0")
	if n := replicas("web"); n != 0 {
		t.Errorf("replicas %d, want 0", n)
	}

	rolloutDeployment(t, c, "sc", "api", "nginx:1", 1)
	run("deployment.apps/api scaled\ndeployment.apps/web scaled\n", "scale", "deploy", "--all", "--replicas=4")
	if replicas("web") != 4 || replicas("api") != 4 {
		t.Errorf("--all: replicas %d and %d, want 4", replicas("web"), replicas("api"))
	}
	run("deployment.apps/api scaled\n", "scale", "deploy", "-l", "app=api", "--replicas=2")
	if replicas("web") != 4 || replicas("api") != 2 {
		t.Errorf("-l: replicas %d and %d, want 4 and 2", replicas("web"), replicas("api"))
	}

	fails(`Error from server (NotFound): deployments.apps "nope" not found`, "scale", "deployment/nope", "--replicas=1")
	fails("error: The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0", "scale", "deployment/web")
	fails(`error: pods "x" cannot be scaled: pods have no scale subresource`, "scale", "pod/x", "--replicas=1")
	fails(`error: the server doesn't have a resource type "nothing"`, "scale", "nothing/x", "--replicas=1")
}
