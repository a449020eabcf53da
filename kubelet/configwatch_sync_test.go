package kubelet

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// fakeWatches registers pod with w, giving each of its objects a watch
// whose first list has not come: the object reads once its channel is
// closed (after the object, if any, is put in its store).
func fakeWatches(w *objectWatcher, pod *corev1.Pod) map[objectRef]fakeWatch {
	out := map[objectRef]fakeWatch{}
	refs := podObjectRefs(pod)
	w.pods[pod.UID] = refs
	for _, r := range refs {
		fw := fakeWatch{store: cache.NewStore(cache.MetaNamespaceKeyFunc), synced: make(chan struct{})}
		w.watches[r] = &objectWatch{store: fw.store, synced: fw.synced, stop: func() {}, pods: map[types.UID]struct{}{pod.UID: {}}}
		out[r] = fw
	}
	return out
}

type fakeWatch struct {
	store  cache.Store
	synced chan struct{}
}

// twoObjectPod refers to the ConfigMap cm and the Secret sec.
func twoObjectPod() *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "p"},
		Spec: corev1.PodSpec{Volumes: []corev1.Volume{
			{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}},
			{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec"}}},
		}}}
}

// TestSnapshotWaitsOnceForUnsyncedWatches: a pod whose objects cannot be
// read yet (their watches never list them) gets its snapshot after one
// syncWait in all, not one per object, with an error naming each object.
// The clock is synctest's, which moves only when every goroutine of the
// test waits on it.
func TestSnapshotWaitsOnceForUnsyncedWatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newObjectWatcher(t.Context(), nil, func(types.UID) {})
		pod := twoObjectPod()
		fakeWatches(w, pod)

		start := time.Now()
		objs := w.snapshot(t.Context(), pod)
		if waited := time.Since(start); waited != syncWait {
			t.Errorf("the snapshot of two unreadable objects waited %v on synctest's clock, want one syncWait (%v)", waited, syncWait)
		}
		if _, err := objs.configMap("default", "cm"); err == nil || !strings.Contains(err.Error(), "configmap default/cm") {
			t.Errorf("the unreadable configmap: got %v, want an error naming configmap default/cm", err)
		}
		if _, err := objs.secret("default", "sec"); err == nil || !strings.Contains(err.Error(), "secret default/sec") {
			t.Errorf("the unreadable secret: got %v, want an error naming secret default/sec", err)
		}
	})
}

// TestSnapshotReadsSyncedAfterDeadline: once the snapshot's deadline has
// passed on an object that cannot be read, the objects whose watches have
// listed them are still read.
func TestSnapshotReadsSyncedAfterDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newObjectWatcher(t.Context(), nil, func(types.UID) {})
		pod := twoObjectPod()
		ws := fakeWatches(w, pod)
		sec := ws[objectRef{kindSecret, "default", "sec"}]
		sec.store.Add(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec", Namespace: "default"}})
		close(sec.synced)

		objs := w.snapshot(t.Context(), pod)
		if _, err := objs.configMap("default", "cm"); err == nil {
			t.Error("the configmap whose watch never listed it: got no error")
		}
		if _, err := objs.secret("default", "sec"); err != nil {
			t.Errorf("the listed secret, read after the deadline: %v", err)
		}
	})
}

// TestGetReturnsOnSync: get waiting for a watch's first list returns the
// object as soon as the watch has it, without any time passing.
func TestGetReturnsOnSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newObjectWatcher(t.Context(), nil, func(types.UID) {})
		pod := twoObjectPod()
		ws := fakeWatches(w, pod)
		r := objectRef{kindConfigMap, "default", "cm"}

		type result struct {
			cm  *corev1.ConfigMap
			err error
		}
		done := make(chan result, 1)
		start := time.Now()
		go func() {
			ctx, cancel := context.WithTimeout(t.Context(), syncWait)
			defer cancel()
			obj, err := w.get(ctx, r)
			cm, _ := obj.(*corev1.ConfigMap)
			done <- result{cm, err}
		}()
		synctest.Wait()
		select {
		case res := <-done:
			t.Fatalf("get returned before the watch listed the object: %v, %v", res.cm, res.err)
		default:
		}

		ws[r].store.Add(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "default"}, Data: map[string]string{"k": "v"}})
		close(ws[r].synced)
		res := <-done
		if res.err != nil || res.cm.Data["k"] != "v" {
			t.Fatalf("get after the watch listed the object: got %v, %v", res.cm, res.err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("get returned %v after the watch synced on synctest's clock, want at once", waited)
		}
	})
}
