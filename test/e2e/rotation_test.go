package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/clientconfig"
	"github.com/skiffdev/skiff/internal/join"
	"github.com/skiffdev/skiff/internal/nodetest"
	"github.com/skiffdev/skiff/internal/pki"
)

// certLifetime is the life of every leaf certificate in the rotation
// story: each is renewed after two thirds of it.
const certLifetime = 9 * time.Second

// A server and two joined agents whose certificates live seconds keep
// working across several renewals of every certificate — the API
// server's serving and kubelet-client ones, each node's client and
// serving ones — with no restart and no failed request: lists from the
// admin, and exec through the API server into a pod on each node (which
// needs both of the API server's certificates and the node's serving
// one). The certificate files then show the new expiries, as skiff
// certificate check lists them.
func TestCertificateRotation(t *testing.T) {
	var lan *nodetest.Cluster
	var dataDir string
	cl := realNodesCluster(t, &lan, func(cfg *apiserver.Config) {
		cfg.CertLifetime = certLifetime
		dataDir = cfg.DataDir
	})
	c, ctx := cl.Client, cl.Ctx
	lan = nodetest.StartCluster(t, cl.Server, 2)
	for _, n := range lan.Nodes {
		n.WaitReady(c)
	}
	for i, n := range lan.Nodes {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("sleeper-%d", i), Namespace: ns},
			Spec: corev1.PodSpec{
				NodeName:                      n.Name,
				TerminationGracePeriodSeconds: ptr.To[int64](0),
				Containers:                    []corev1.Container{{Name: "c", Image: lan.Image, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sleep", "3600"}}},
			},
		}
		if _, err := c.Pods(ns).Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		cl.Await(90*time.Second, p.Name+" to run", func() (bool, error) {
			got, err := c.Pods(ns).Get(ctx, p.Name)
			return err == nil && got.Status.Phase == corev1.PodRunning, err
		})
	}

	tlsDir := apiserver.TLSDir(dataDir)
	files := []string{filepath.Join(tlsDir, "server.crt"), filepath.Join(tlsDir, "kubelet-client.crt")}
	for _, n := range lan.Nodes {
		files = append(files, filepath.Join(n.Config.RootDir, join.KubeconfigFile), filepath.Join(n.Config.RootDir, join.ServingCertFile))
	}
	check := func() []pki.FileStatus {
		statuses := pki.CheckFiles(files, func(path string) ([]byte, error) {
			creds, err := clientconfig.ReadCredentials(path)
			return creds.CertPEM, err
		})
		if len(statuses) != len(files) {
			t.Fatalf("got %d certificate files, want %d: %v", len(statuses), len(files), statuses)
		}
		return statuses
	}
	first := check()
	// serials records every certificate each file held.
	serials := make([]map[string]bool, len(files))
	for i := range serials {
		serials[i] = map[string]bool{}
	}
	renewed := func() int {
		least := -1
		for i, st := range check() {
			if st.Err != nil {
				continue // being replaced
			}
			serials[i][st.Cert.SerialNumber.String()] = true
			if n := len(serials[i]) - 1; least < 0 || n < least {
				least = n
			}
		}
		return least
	}

	// Requests of every kind, none of which may fail, until every
	// certificate was renewed three times.
	const wantRenewals = 3
	deadline := time.Now().Add(6 * certLifetime)
	requests := 0
	pace := time.NewTicker(200 * time.Millisecond)
	defer pace.Stop()
	for ; renewed() < wantRenewals; <-pace.C {
		if time.Now().After(deadline) {
			t.Fatalf("after %v, some certificate was renewed fewer than %d times: %v", 6*certLifetime, wantRenewals, serials)
		}
		if _, err := c.Pods(ns).List(ctx, metav1.ListOptions{}); err != nil {
			t.Fatalf("a list failed during rotation: %v", err)
		}
		for i := range lan.Nodes {
			code, err := c.PodExec(ctx, ns, fmt.Sprintf("sleeper-%d", i), client.ExecOptions{Command: []string{"true"}})
			if err != nil || code != 0 {
				t.Fatalf("exec on node %d failed during rotation: exit %d, %v", i, code, err)
			}
		}
		for _, n := range lan.Nodes {
			node, err := c.Nodes().Get(ctx, n.Name)
			if err != nil {
				t.Fatal(err)
			}
			if st := nodeReady(node); st != corev1.ConditionTrue {
				t.Fatalf("node %s turned %s during rotation", n.Name, st)
			}
			if n.Exited() {
				t.Fatalf("the agent of %s exited:\n%s", n.Name, n.Output())
			}
		}
		requests += 1 + len(lan.Nodes)*2
	}
	t.Logf("%d requests across %d renewals of each of %d certificates, none failed", requests, wantRenewals, len(files))
	for i, st := range check() {
		if st.Err != nil {
			t.Errorf("%s: %v", st.Path, st.Err)
			continue
		}
		if !st.Cert.NotAfter.After(first[i].Cert.NotAfter) {
			t.Errorf("%s: expires %v, not after its first certificate's %v", st.Path, st.Cert.NotAfter, first[i].Cert.NotAfter)
		}
	}
}
