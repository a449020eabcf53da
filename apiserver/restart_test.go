package apiserver_test

// Tests of what survives a restart: of the API server on the same data
// directory, and of an external etcd under a running API server. The etcd
// in the last two tests is a separate OS process (this test binary run
// again, see main_test.go), so that it can be killed like a real one.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
)

func TestServerRestartLosesNothing(t *testing.T) {
	cfg := testenv.ServerConfig(t)
	ctx := testenv.Context(t)

	// Before: objects of several kinds, cluster-scoped and namespaced.
	a, stopA := startStoppable(t, cfg)
	ca := testenv.NewClient(t, a)
	objects := []struct {
		name   string
		create func(c *client.Client) (metav1.Object, error)
		get    func(c *client.Client) (metav1.Object, error)
	}{
		{
			name: "namespace team-a",
			create: func(c *client.Client) (metav1.Object, error) {
				return c.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}})
			},
			get: func(c *client.Client) (metav1.Object, error) { return c.Namespaces().Get(ctx, "team-a") },
		},
		{
			name: "deployment team-a/web",
			create: func(c *client.Client) (metav1.Object, error) {
				return c.Deployments("team-a").Create(ctx, rsDeployment("web"))
			},
			get: func(c *client.Client) (metav1.Object, error) { return c.Deployments("team-a").Get(ctx, "web") },
		},
		{
			name: "deployment default/api",
			create: func(c *client.Client) (metav1.Object, error) {
				return c.Deployments("default").Create(ctx, rsDeployment("api"))
			},
			get: func(c *client.Client) (metav1.Object, error) { return c.Deployments("default").Get(ctx, "api") },
		},
		{
			name:   "pod team-a/web-1",
			create: func(c *client.Client) (metav1.Object, error) { return c.Pods("team-a").Create(ctx, rsPod("web-1")) },
			get:    func(c *client.Client) (metav1.Object, error) { return c.Pods("team-a").Get(ctx, "web-1") },
		},
		{
			name:   "pod default/api-1",
			create: func(c *client.Client) (metav1.Object, error) { return c.Pods("default").Create(ctx, rsPod("api-1")) },
			get:    func(c *client.Client) (metav1.Object, error) { return c.Pods("default").Get(ctx, "api-1") },
		},
		{
			name: "service team-a/web",
			create: func(c *client.Client) (metav1.Object, error) {
				return c.Services("team-a").Create(ctx, &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Name: "web"},
					Spec: corev1.ServiceSpec{
						Selector: map[string]string{"app": "web"},
						Ports:    []corev1.ServicePort{{Port: 80}},
					},
				})
			},
			get: func(c *client.Client) (metav1.Object, error) { return c.Services("team-a").Get(ctx, "web") },
		},
		{
			name: "node node-1",
			create: func(c *client.Client) (metav1.Object, error) {
				return c.Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}})
			},
			get: func(c *client.Client) (metav1.Object, error) { return c.Nodes().Get(ctx, "node-1") },
		},
	}
	before := make([]metav1.Object, len(objects))
	for i, o := range objects {
		m, err := o.create(ca)
		if err != nil {
			t.Fatalf("creating %s: %v", o.name, err)
		}
		before[i] = m
	}
	lastRV := before[len(before)-1].GetResourceVersion()

	// Stop, and start again on the same data directory (a new port).
	stopA()
	b, _ := startStoppable(t, cfg)
	cb := testenv.NewClient(t, b)

	for i, o := range objects {
		t.Run(o.name, func(t *testing.T) {
			m, err := o.get(cb)
			if err != nil {
				t.Fatalf("after the restart: %v", err)
			}
			if got, want := m.GetUID(), before[i].GetUID(); got != want {
				t.Errorf("uid: got %v, want %v", got, want)
			}
			if got, want := m.GetResourceVersion(), before[i].GetResourceVersion(); got != want {
				t.Errorf("resourceVersion: got %v, want %v", got, want)
			}
		})
	}

	// The watch cache was filled from etcd too: a list at resourceVersion
	// "0" (served by the cache) holds the pods, at a resourceVersion no
	// older than the last write before the restart.
	cached, err := cb.Pods("").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(cached.Items), 2; got != want {
		t.Errorf("pods in the watch cache: got %v, want %v", got, want)
	}
	if rvLess(t, cached.ResourceVersion, lastRV) {
		t.Errorf("cached list resourceVersion: got %v, want at least %v", cached.ResourceVersion, lastRV)
	}

	// New writes work, and their resourceVersions go on from the old ones.
	d, err := cb.Deployments("team-a").Get(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Replicas = ptr.To[int32](3)
	d, err = cb.Deployments("team-a").Update(ctx, d)
	if err != nil {
		t.Fatalf("updating a deployment after the restart: %v", err)
	}
	if !rvLess(t, lastRV, d.ResourceVersion) {
		t.Errorf("resourceVersion after the restart: got %v, want more than %v", d.ResourceVersion, lastRV)
	}
	if _, err := cb.Pods("default").Create(ctx, rsPod("after")); err != nil {
		t.Fatalf("creating a pod after the restart: %v", err)
	}

	// A watch from the last resourceVersion seen before the restart either
	// resumes (its first event is the pod created since) or is Gone, which
	// tells the client to list again. Both keep the Kubernetes contract.
	w, err := cb.Pods("").Watch(ctx, metav1.ListOptions{ResourceVersion: lastRV})
	if err != nil {
		if !apierrors.IsGone(err) && !apierrors.IsResourceExpired(err) {
			t.Fatalf("watch from resourceVersion %s: got %v, want events or Gone", lastRV, err)
		}
		t.Logf("a watch from resourceVersion %s after the restart: %v", lastRV, err)
		return
	}
	defer w.Stop()
	ev := nextEvent(t, w, 10*time.Second)
	switch p, _ := ev.Object.(*corev1.Pod); {
	case ev.Type == watch.Error:
		if st, _ := ev.Object.(*metav1.Status); st == nil || st.Code != 410 {
			t.Fatalf("watch from resourceVersion %s: got ERROR %v, want 410 Gone", lastRV, ev.Object)
		}
		t.Logf("a watch from resourceVersion %s after the restart: %s", lastRV, ev.Object.(*metav1.Status).Message)
	case ev.Type != watch.Added || p == nil || p.Name != "after":
		t.Fatalf("watch from resourceVersion %s: got %s %s, want ADDED after", lastRV, ev.Type, objectName(ev.Object))
	default:
		t.Logf("a watch from resourceVersion %s after the restart resumed", lastRV)
	}
}

func TestInformerSurvivesServerRestart(t *testing.T) {
	// Both servers listen on one fixed port, as a restarted server would.
	cfg := testenv.ServerConfig(t)
	cfg.Listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	ctx := testenv.Context(t)

	// The client's certificate outlives server a: b keeps a's CA, which
	// is in the data directory they share.
	a, stopA := startStoppable(t, cfg)
	c := testenv.NewClient(t, a)
	for _, name := range []string{"stays", "goes"} {
		if _, err := c.Pods("default").Create(ctx, rsPod(name)); err != nil {
			t.Fatal(err)
		}
	}
	inf, stopInformer := runPodInformer(t, c)
	defer stopInformer()
	waitForPods(t, inf, []string{"default/goes", "default/stays"}, nil)

	stopA()
	startStoppable(t, cfg)

	// The same client reconnects by itself; its first requests may still
	// find the connection down.
	retryUnavailable(t, "creating a pod after the restart", func() error {
		_, err := c.Pods("default").Create(ctx, rsPod("new"))
		if apierrors.IsAlreadyExists(err) {
			return nil // an earlier attempt got through
		}
		return err
	})
	retryUnavailable(t, "deleting a pod after the restart", func() error {
		err := c.Pods("default").Delete(ctx, "goes", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	waitForPods(t, inf, []string{"default/new", "default/stays"}, []string{"default/goes"})
}

func TestExternalEtcd(t *testing.T) {
	etcd := startEtcdProcess(t)
	cfg := testenv.ServerConfig(t)
	cfg.EtcdServers = []string{etcd.clientURL}
	srv := testenv.StartServerWith(t, cfg)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	raw := etcd.client(t)

	if _, err := os.Stat(filepath.Join(cfg.DataDir, "etcd")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("embedded etcd directory: got %v, want none with an external etcd", err)
	}

	cases := []struct {
		name   string
		key    string
		create func() (metav1.Object, error)
		update func() (metav1.Object, error)
		delete func() error
	}{
		{
			name:   "pods",
			key:    "/registry/core/pods/default/web-1",
			create: func() (metav1.Object, error) { return c.Pods("default").Create(ctx, rsPod("web-1")) },
			update: func() (metav1.Object, error) {
				p, err := c.Pods("default").Get(ctx, "web-1")
				if err != nil {
					return nil, err
				}
				p.Labels["touched"] = "yes"
				return c.Pods("default").Update(ctx, p)
			},
			delete: func() error {
				return c.Pods("default").Delete(ctx, "web-1", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
			},
		},
		{
			name:   "deployments",
			key:    "/registry/apps/deployments/default/web",
			create: func() (metav1.Object, error) { return c.Deployments("default").Create(ctx, rsDeployment("web")) },
			update: func() (metav1.Object, error) {
				d, err := c.Deployments("default").Get(ctx, "web")
				if err != nil {
					return nil, err
				}
				d.Spec.Replicas = ptr.To[int32](5)
				return c.Deployments("default").Update(ctx, d)
			},
			delete: func() error { return c.Deployments("default").Delete(ctx, "web", metav1.DeleteOptions{}) },
		},
		{
			name: "nodes",
			key:  "/registry/core/nodes/node-1",
			create: func() (metav1.Object, error) {
				return c.Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}})
			},
			update: func() (metav1.Object, error) {
				n, err := c.Nodes().Get(ctx, "node-1")
				if err != nil {
					return nil, err
				}
				n.Labels = map[string]string{"touched": "yes"}
				return c.Nodes().Update(ctx, n)
			},
			delete: func() error { return c.Nodes().Delete(ctx, "node-1", metav1.DeleteOptions{}) },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// stored checks the object under its key in etcd: Kubernetes
			// protobuf, with the key's mod revision as resourceVersion.
			stored := func(m metav1.Object) {
				t.Helper()
				resp, err := raw.Get(ctx, tc.key)
				if err != nil {
					t.Fatalf("reading %s from etcd: %v", tc.key, err)
				}
				if len(resp.Kvs) != 1 {
					t.Fatalf("keys named %s in etcd: got %v, want 1", tc.key, len(resp.Kvs))
				}
				kv := resp.Kvs[0]
				if !bytes.HasPrefix(kv.Value, []byte("k8s\x00")) {
					t.Errorf("value of %s: got %q..., want the Kubernetes protobuf magic \"k8s\\x00\"", tc.key, kv.Value[:min(8, len(kv.Value))])
				}
				if !bytes.Contains(kv.Value, []byte(m.GetUID())) {
					t.Errorf("value of %s does not hold the uid %s", tc.key, m.GetUID())
				}
				if got, want := strconv.FormatInt(kv.ModRevision, 10), m.GetResourceVersion(); got != want {
					t.Errorf("mod revision of %s: got %v, want the resourceVersion %v", tc.key, got, want)
				}
			}

			created, err := tc.create()
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			stored(created)
			updated, err := tc.update()
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			stored(updated)
			if err := tc.delete(); err != nil {
				t.Fatalf("delete: %v", err)
			}
			resp, err := raw.Get(ctx, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(resp.Kvs); got != 0 {
				t.Errorf("keys named %s after the delete: got %v, want 0", tc.key, got)
			}
		})
	}
}

func TestEtcdStoppedAndRestarted(t *testing.T) {
	etcd := startEtcdProcess(t)
	cfg := testenv.ServerConfig(t)
	cfg.EtcdServers = []string{etcd.clientURL}
	cfg.RequestTimeout = 2 * time.Second
	srv := testenv.StartServerWith(t, cfg)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	pods := c.Pods("default")

	if _, err := pods.Create(ctx, rsPod("before")); err != nil {
		t.Fatal(err)
	}
	list, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	inf, _ := runPodInformer(t, c)
	waitForPods(t, inf, []string{"default/before"}, nil)

	etcd.kill(t)

	// Writes fail with ServiceUnavailable once the request timeout runs
	// out; they never hang.
	wait.For(t, 30*time.Second, "a create to fail with ServiceUnavailable", func() (bool, error) {
		_, err := pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "during-"}, Spec: rsPodSpec()})
		switch {
		case err == nil:
			return false, errors.New("a create succeeded while etcd was down")
		case !apierrors.IsServiceUnavailable(err):
			return false, err
		case !strings.Contains(err.Error(), "storage") && !strings.Contains(err.Error(), "etcd"):
			return false, fmt.Errorf("got %q, want a message that names storage or etcd", err)
		}
		t.Logf("a create while etcd is down: %v", err)
		return true, nil
	})
	// Reads at resourceVersion "0" are served by the watch cache, which
	// still holds what it had.
	cached, err := pods.List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Errorf("list from the watch cache while etcd is down: %v", err)
	} else if got, want := len(cached.Items), 1; got != want {
		t.Errorf("pods listed from the watch cache while etcd is down: got %v, want %v", got, want)
	}

	// etcd comes back on the same data and ports; the API server finds it
	// again without being restarted.
	etcd.start(t)
	wait.For(t, 30*time.Second, "a create to succeed after etcd came back", func() (bool, error) {
		_, err := pods.Create(ctx, rsPod("after"))
		if err == nil || apierrors.IsAlreadyExists(err) {
			return true, nil
		}
		return false, err
	})
	if _, err := pods.Get(ctx, "before"); err != nil {
		t.Errorf("getting a pod written before the outage: %v", err)
	}
	// The informer sees the new pod: the server's watch cache follows etcd
	// again.
	waitForPods(t, inf, []string{"default/after", "default/before"}, nil)

	// The watch opened before the outage delivers the new pod, or ends
	// (closed, or 410 Gone) so that its owner watches or lists again. It
	// must not stay open and silent.
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Log("the watch opened before the outage ended")
				return
			}
			switch ev.Type {
			case watch.Bookmark:
				continue
			case watch.Error:
				if st, _ := ev.Object.(*metav1.Status); st == nil || st.Code != 410 {
					t.Fatalf("watch opened before the outage: got ERROR %v, want events or 410 Gone", ev.Object)
				}
				t.Log("the watch opened before the outage ended with 410 Gone")
				return
			}
			if p, _ := ev.Object.(*corev1.Pod); ev.Type == watch.Added && p != nil && p.Name == "after" {
				t.Log("the watch opened before the outage delivered the new pod")
				return
			}
			if p, _ := ev.Object.(*corev1.Pod); p != nil && strings.HasPrefix(p.Name, "during-") {
				t.Fatalf("watch opened before the outage: got %s of %s, a pod whose create failed", ev.Type, p.Name)
			}
		case <-deadline:
			t.Fatal("the watch opened before the outage neither delivered the new pod nor ended within 30s")
		}
	}
}

func TestRequestTooLarge(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	const KiB, MiB = 1 << 10, 1 << 20
	limit := strconv.Itoa(apiserver.MaxRequestBytes)

	withAnnotation := func(name string, size int) *corev1.Pod {
		p := rsPod(name)
		p.Annotations = map[string]string{"example.com/blob": strings.Repeat("a", size)}
		return p
	}
	withArgs := func(name string, size int) *corev1.Pod {
		// Arguments have no size limit of their own, unlike annotations
		// (256 KiB in all), so they make a big pod that is still valid.
		p := rsPod(name)
		for range size / (64 * KiB) {
			p.Spec.Containers[0].Args = append(p.Spec.Containers[0].Args, strings.Repeat("a", 64*KiB))
		}
		return p
	}
	tooLarge := apierrors.IsRequestEntityTooLargeError
	cases := []struct {
		name    string
		pod     *corev1.Pod
		want    string           // the outcome, for failure messages
		accept  bool             // the pod may be created
		refuse  func(error) bool // the kind of error the pod may be refused with
		wantMsg string           // what the refusal's message must match
	}{
		{
			name:    "just over the limit",
			want:    "413 RequestEntityTooLarge",
			pod:     withAnnotation("over", apiserver.MaxRequestBytes+KiB),
			refuse:  tooLarge,
			wantMsg: "limit is " + limit,
		},
		{
			// So big that gRPC refuses the message before the service
			// sees it; the client still reports a 413.
			name:    "far over the limit",
			want:    "413 RequestEntityTooLarge",
			pod:     withAnnotation("far-over", 5*MiB),
			refuse:  tooLarge,
			wantMsg: "limit is " + limit + "|larger than max",
		},
		{
			name:    "1 MiB of annotations",
			want:    "422 Invalid",
			pod:     withAnnotation("big-annotations", MiB),
			refuse:  apierrors.IsInvalid,
			wantMsg: `metadata\.annotations: Too long.* 262144 bytes`,
		},
		{
			name:   "1 MiB pod",
			want:   "the pod stored",
			pod:    withArgs("one-mib", MiB),
			accept: true,
		},
		{
			// Under the API's limit but over etcd's default request
			// limit (1.5 MiB): stored, or refused as too large with a
			// reason, but never an internal error.
			name:    "1.75 MiB pod",
			want:    "the pod stored, or 413 RequestEntityTooLarge",
			pod:     withArgs("one-and-three-quarters-mib", MiB+3*MiB/4),
			accept:  true,
			refuse:  tooLarge,
			wantMsg: "limit|too large|larger than",
		},
		{
			// Over the etcd client's default message size (2 MiB).
			name:    "2.5 MiB pod",
			want:    "the pod stored, or 413 RequestEntityTooLarge",
			pod:     withArgs("two-and-a-half-mib", 2*MiB+MiB/2),
			accept:  true,
			refuse:  tooLarge,
			wantMsg: "limit|too large|larger than",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			created, err := c.Pods("default").Create(ctx, tc.pod)
			switch {
			case err == nil && !tc.accept:
				t.Fatalf("got the pod stored, want %s", tc.want)
			case err == nil:
				got, err := c.Pods("default").Get(ctx, created.Name)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := len(got.Spec.Containers[0].Args), len(tc.pod.Spec.Containers[0].Args); got != want {
					t.Errorf("arguments stored: got %v, want %v", got, want)
				}
			case tc.refuse == nil || !tc.refuse(err):
				t.Fatalf("got %v (reason %s, code %d), want %s", err, apierrors.ReasonForError(err), errorCode(err), tc.want)
			case !regexp.MustCompile(tc.wantMsg).MatchString(err.Error()):
				t.Errorf("got %q, want a message matching %q", err, tc.wantMsg)
			}
		})
	}
}

// errorCode is the HTTP code of an API error, 0 for other errors.
func errorCode(err error) int32 {
	if s, ok := err.(apierrors.APIStatus); ok {
		return s.Status().Code
	}
	return 0
}

// rsPodSpec, rsPod and rsDeployment make the objects of these tests.
func rsPodSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}}
}

func rsPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec:       rsPodSpec(),
	}
}

func rsDeployment(name string) *appsv1.Deployment {
	l := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l}, Spec: rsPodSpec()},
		},
	}
}

// startStoppable starts an API server and returns a stop function that may
// be called before the test ends; whatever is still running then is
// stopped when it ends.
func startStoppable(t *testing.T, cfg apiserver.Config) (*apiserver.Server, func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := apiserver.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("starting the API server: %v", err)
	}
	var once sync.Once
	stop := func() { once.Do(s.Stop) }
	t.Cleanup(stop)
	return s, stop
}

// runPodInformer runs an informer on all pods and waits for its first
// list. It runs until stop is called or the test ends; a test that starts
// a server after the informer stops it first, so that the informer does
// not see that server go away at the end.
func runPodInformer(t *testing.T, c *client.Client) (inf cache.SharedIndexInformer, stop func()) {
	t.Helper()
	inf = cache.NewSharedIndexInformer(c.Pods("").ListWatch(nil), &corev1.Pod{}, 0, cache.Indexers{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		inf.RunWithContext(ctx)
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	if !cache.WaitForCacheSync(testenv.Context(t).Done(), inf.HasSynced) {
		t.Fatal("the pod informer did not sync")
	}
	return inf, stop
}

// waitForPods waits until the informer's store holds every key in want and
// none in gone.
func waitForPods(t *testing.T, inf cache.SharedIndexInformer, want, gone []string) {
	t.Helper()
	wait.For(t, 30*time.Second, fmt.Sprintf("the informer to hold %v and not %v", want, gone), func() (bool, error) {
		keys := inf.GetStore().ListKeys()
		for _, k := range want {
			if _, ok, _ := inf.GetStore().GetByKey(k); !ok {
				return false, fmt.Errorf("store holds %v", keys)
			}
		}
		for _, k := range gone {
			if _, ok, _ := inf.GetStore().GetByKey(k); ok {
				return false, fmt.Errorf("store holds %v", keys)
			}
		}
		return true, nil
	})
}

// retryUnavailable retries op while it fails with ServiceUnavailable, as
// it does while the client reconnects.
func retryUnavailable(t *testing.T, what string, op func() error) {
	t.Helper()
	wait.For(t, 30*time.Second, what, func() (bool, error) {
		err := op()
		if err != nil && !apierrors.IsServiceUnavailable(err) {
			t.Fatalf("%s: %v", what, err)
		}
		return err == nil, err
	})
}

// nextEvent returns the watch's next event that is not a bookmark.
func nextEvent(t *testing.T, w watch.Interface, timeout time.Duration) watch.Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("the watch ended")
			}
			if ev.Type != watch.Bookmark {
				return ev
			}
		case <-deadline:
			t.Fatalf("no watch event within %v", timeout)
		}
	}
}

func objectName(obj any) string {
	if m, ok := obj.(metav1.Object); ok {
		return m.GetNamespace() + "/" + m.GetName()
	}
	return fmt.Sprintf("%T", obj)
}

// rvLess reports whether resourceVersion a is older than b.
func rvLess(t *testing.T, a, b string) bool {
	t.Helper()
	x, err1 := strconv.ParseInt(a, 10, 64)
	y, err2 := strconv.ParseInt(b, 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("comparing resourceVersions: %v", err)
	}
	return x < y
}

// freePort returns a loopback TCP port that is free now and that a test can
// listen on again after a restart. It comes from below the kernel's
// ephemeral range: a port from that range can be taken, while its listener
// is down, as the source port of any outgoing connection on the machine
// (the API server's own reconnects included), and the restart then fails
// with "address already in use".
func freePort(t *testing.T) int {
	t.Helper()
	low := 32768 // the kernel's default start of the ephemeral range
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	const first = 10000
	if low <= first+1000 {
		t.Fatalf("the ephemeral port range starts at %d; this test needs ports below it", low)
	}
	for range 1000 {
		port := first + rand.IntN(low-first)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // in use; try another
		}
		l.Close()
		return port
	}
	t.Fatalf("no free loopback port below %d", low)
	return 0
}

// etcdProcess is an etcd running in its own OS process: this test binary
// run again with the variables TestMain looks for. It can be killed and
// started again on the same data directory and ports.
type etcdProcess struct {
	dir       string
	clientURL string
	peerURL   string

	// mu guards cmd, exited and stdin.
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	stdin  io.WriteCloser
	output testenv.Output
}

// startEtcdProcess starts an etcd process on a new data directory and two
// free loopback ports, and kills it when the test ends.
func startEtcdProcess(t *testing.T) *etcdProcess {
	t.Helper()
	e := &etcdProcess{
		dir:       filepath.Join(testenv.ShortTempDir(t), "etcd"),
		clientURL: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		peerURL:   fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
	}
	t.Cleanup(func() {
		e.stop()
		if t.Failed() {
			t.Logf("etcd process output:\n%s", e.output.String())
		}
	})
	e.start(t)
	return e
}

// start starts the process and waits until etcd answers.
func (e *etcdProcess) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		envEtcdDir+"="+e.dir,
		envEtcdClientURL+"="+e.clientURL,
		envEtcdPeerURL+"="+e.peerURL,
	)
	cmd.Stdout, cmd.Stderr = &e.output, &e.output
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the etcd process: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	e.mu.Lock()
	e.cmd, e.exited, e.stdin = cmd, exited, stdin
	e.mu.Unlock()

	probe := e.client(t)
	wait.For(t, 30*time.Second, "the etcd process to answer", func() (bool, error) {
		select {
		case <-exited:
			return false, fmt.Errorf("the etcd process exited: %s; output:\n%s", cmd.ProcessState, e.output.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := probe.Status(ctx, e.clientURL)
		return err == nil, err
	})
}

// kill kills the process with SIGKILL, as a crash would, and waits for it.
func (e *etcdProcess) kill(t *testing.T) {
	t.Helper()
	e.mu.Lock()
	cmd, exited := e.cmd, e.exited
	e.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("killing the etcd process %d: %v", cmd.Process.Pid, err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the etcd process %d did not exit after SIGKILL", cmd.Process.Pid)
	}
}

// stop kills the process if it still runs.
func (e *etcdProcess) stop() {
	e.mu.Lock()
	cmd, exited, stdin := e.cmd, e.exited, e.stdin
	e.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = stdin.Close()
	<-exited
}

// client returns an etcd client of the process's client URL, closed when
// the test ends.
func (e *etcdProcess) client(t *testing.T) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{e.clientURL},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
