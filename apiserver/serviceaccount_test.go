package apiserver_test

import (
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/internal/testenv"
)

// TestPodServiceAccountDefault checks the defaulting half of Kubernetes'
// ServiceAccount admission: a new pod that names no ServiceAccount runs
// as "default" (serviceAccount, the field's old name, says the same),
// without a warning; one that names one keeps it; a mirror pod, which may
// name none, is left without.
func TestPodServiceAccountDefault(t *testing.T) {
	srv := testenv.StartServer(t)
	var mu sync.Mutex
	var warnings []string
	cfg := testenv.AdminConfig(t, srv)
	cfg.WarningHandler = func(w string) { mu.Lock(); warnings = append(warnings, w); mu.Unlock() }
	c := testenv.NewClientWith(t, cfg)
	ctx := testenv.Context(t)

	tests := []struct {
		name        string
		new, old    string // serviceAccountName, serviceAccount as sent
		want        string
		wantWarning bool
	}{
		{"none", "", "", "default", false},
		{"named", "builder", "", "builder", false},
		{"by the old field only", "", "legacy", "legacy", false},
		{"both, the new one wins", "builder", "legacy", "builder", false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			warnings = nil
			mu.Unlock()
			pod := newPod("sa-"+string(rune('a'+i)), nil)
			pod.Spec.ServiceAccountName, pod.Spec.DeprecatedServiceAccount = tt.new, tt.old
			got, err := c.Pods("default").Create(ctx, pod)
			if err != nil {
				t.Fatal(err)
			}
			if got.Spec.ServiceAccountName != tt.want || got.Spec.DeprecatedServiceAccount != tt.want {
				t.Errorf("serviceAccountName %q, serviceAccount %q; want both %q", got.Spec.ServiceAccountName, got.Spec.DeprecatedServiceAccount, tt.want)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(warnings) > 0 {
				t.Errorf("warnings %q, want none", warnings)
			}
		})
	}

	t.Run("mirror pod", func(t *testing.T) {
		node, err := c.Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}})
		if err != nil {
			t.Fatal(err)
		}
		nc := testenv.NewClientAs(t, srv, "system:node:n1", auth.NodesGroup)
		pod := newPod("static-n1", nil)
		pod.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "hash"}
		pod.Spec.NodeName = "n1"
		pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: "n1", UID: node.UID, Controller: new(true)}}
		got, err := nc.Pods("default").Create(ctx, pod)
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.ServiceAccountName != "" {
			t.Errorf("a mirror pod got serviceAccountName %q, want none", got.Spec.ServiceAccountName)
		}
	})
}
