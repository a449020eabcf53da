package ctl

import (
	"strings"
	"testing"

	"github.com/skiffdev/skiff/internal/testenv"
)

// TestExamplesApplyUnchanged applies the manifests in examples/, written
// as a user writes them for Kubernetes, to a real server: every object is
// created, and applying again changes nothing.
func TestExamplesApplyUnchanged(t *testing.T) {
	srv := testenv.StartServer(t)
	kubeconfig := ctlKubeconfig(t, srv)
	out, errOut, err := ctlRun(t, kubeconfig, "", "apply", "-f", "../examples")
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, errOut)
	}
	for _, want := range []string{
		"namespace/team-a created", "service/web created", "deployment.apps/web created",
		"deployment.apps/api created", "pod/sidecar-demo created",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if errOut != "" {
		t.Errorf("warnings or errors for plain manifests:\n%s", errOut)
	}
	out, _, err = ctlRun(t, kubeconfig, "", "apply", "-f", "../examples")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out, " unchanged"); n != 5 {
		t.Fatalf("second apply: %d unchanged, want 5:\n%s", n, out)
	}
}
