package kubelet

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
)

// TestObjectWatcher runs the object watches against a real API server
// (no root needed): watches follow the pods' references, counted per
// pod, a missing object reads as Kubernetes' NotFound, and every change
// of an object wakes exactly the pods that use it.
func TestObjectWatcher(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)

	var mu sync.Mutex
	woken := map[types.UID]int{}
	w := newObjectWatcher(ctx, c, func(uid types.UID) {
		mu.Lock()
		woken[uid]++
		mu.Unlock()
	})
	wakes := func(uid types.UID) int {
		mu.Lock()
		defer mu.Unlock()
		return woken[uid]
	}
	watched := func() string {
		var out []string
		for _, r := range w.watched() {
			out = append(out, r.String())
		}
		slices.Sort(out)
		return fmt.Sprint(out)
	}
	pod := func(uid, secret string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: uid, Namespace: "default", UID: types.UID(uid)},
			Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "shared"}}}}}}}
		if secret != "" {
			p.Spec.Containers = []corev1.Container{{Name: "c", Env: []corev1.EnvVar{{Name: "S", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: "k"}}}}}}
		}
		return p
	}
	a, b := pod("a", "a-only"), pod("b", "")

	w.register(a)
	if got, want := watched(), "[configmap default/shared secret default/a-only]"; got != want {
		t.Errorf("watched after a: got %s, want %s", got, want)
	}
	_, err := w.get(ctx, objectRef{kindConfigMap, "default", "shared"})
	if !apierrors.IsNotFound(err) || err.Error() != `configmap "shared" not found` {
		t.Errorf("a missing configmap: got %v, want NotFound `configmap \"shared\" not found`", err)
	}
	if _, err := w.get(ctx, objectRef{kindConfigMap, "default", "other"}); err == nil {
		t.Error("an object no pod registered: got no error")
	}

	// Its arrival wakes a; the next read has it.
	if _, err := c.ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shared"}, Data: map[string]string{"k": "1"}}); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "the configmap's arrival to wake a", func() bool { return wakes("a") > 0 })
	wait.For(t, 10*time.Second, "the configmap to be read", func() (bool, error) {
		obj, err := w.get(ctx, objectRef{kindConfigMap, "default", "shared"})
		return err == nil && obj.(*corev1.ConfigMap).Data["k"] == "1", err
	})

	// Both pods use it now: a change wakes both.
	w.register(b)
	before := wakes("a")
	cm, err := c.ConfigMaps("default").Get(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["k"] = "2"
	if _, err := c.ConfigMaps("default").Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "the change to wake a and b", func() bool { return wakes("a") > before && wakes("b") > 0 })

	// A secret only a uses wakes only a.
	bBefore := wakes("b")
	aBefore := wakes("a")
	if _, err := c.Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "a-only"}, Data: map[string][]byte{"k": []byte("s")}}); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "the secret to wake a", func() bool { return wakes("a") > aBefore })
	// The configmap's watch is the only one that could wake b; read
	// it after a was woken, so that b had every chance.
	if wakes("b") != bBefore {
		t.Errorf("the secret a alone uses woke b")
	}

	// An immutable object is read once, then no longer watched: its
	// copy serves the pods that use it.
	if _, err := c.ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "frozen"}, Immutable: ptr.To(true), Data: map[string]string{"k": "ice"}}); err != nil {
		t.Fatal(err)
	}
	frozen := pod("f", "")
	frozen.Spec.Volumes[0].ConfigMap.Name = "frozen"
	w.register(frozen)
	ref := objectRef{kindConfigMap, "default", "frozen"}
	wait.Until(t, 10*time.Second, "the immutable configmap's watch to stop", func() bool { return !w.isWatching(ref) })
	if obj, err := w.get(ctx, ref); err != nil || obj.(*corev1.ConfigMap).Data["k"] != "ice" {
		t.Errorf("the immutable configmap after its watch stopped: got %v, %v", obj, err)
	}
	if !w.isWatching(objectRef{kindConfigMap, "default", "shared"}) {
		t.Error("a mutable configmap's watch stopped")
	}
	w.unregister(frozen.UID)

	// The watches go with the last pod that uses them.
	w.unregister(a.UID)
	if got, want := watched(), "[configmap default/shared]"; got != want {
		t.Errorf("watched after a left: got %s, want %s", got, want)
	}
	w.unregister(b.UID)
	if got := watched(); got != "[]" {
		t.Errorf("watched after both left: got %s, want none", got)
	}
}
