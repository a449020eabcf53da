package nodelifecycle_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/controllers/nodelifecycle"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
	"github.com/skiffdev/skiff/scheduler"
	"github.com/skiffdev/skiff/simnodes"
)

// TestNodeLost is the story of a node that dies and comes back, on a real
// API server with the scheduler and simulated nodes, with short times:
// heartbeats every 200 ms, a 2 s grace period, 2 s default tolerations.
func TestNodeLost(t *testing.T) {
	const (
		heartbeat         = 200 * time.Millisecond
		grace             = 2 * time.Second
		tolerationSeconds = 2
	)
	srv := testenv.StartServer(t, func(cfg *apiserver.Config) { cfg.DefaultTolerationSeconds = tolerationSeconds })
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	// Everything started below runs until runCtx ends; wg and factory
	// wait for it when the test ends, however it ends.
	var wg sync.WaitGroup
	var factory *informers.Factory
	quiet := slog.New(slog.DiscardHandler)
	runCtx, stop := context.WithCancel(logging.Into(ctx, quiet))
	t.Cleanup(func() {
		stop()
		wg.Wait()
		if factory != nil {
			factory.Wait()
		}
	})

	// Two simulated nodes: ok-0 stays, lost-0 dies and comes back.
	simCfg := func(prefix, cidr string) simnodes.Config {
		cfg := simnodes.DefaultConfig()
		cfg.Client, cfg.NamePrefix, cfg.PodCIDR = c, prefix, cidr
		cfg.HeartbeatInterval = heartbeat
		return cfg
	}
	startSim := func(ctx context.Context, cfg simnodes.Config) (done chan struct{}) {
		done = make(chan struct{})
		wg.Go(func() {
			defer close(done)
			if err := simnodes.Run(ctx, cfg); err != nil {
				t.Errorf("simnodes %s: %v", cfg.NamePrefix, err)
			}
		})
		return done
	}
	startSim(runCtx, simCfg("ok-", "10.128.0.0/16"))
	lostCtx, kill := context.WithCancel(runCtx)
	lostDone := startSim(lostCtx, simCfg("lost-", "10.129.0.0/16"))

	schedCfg := scheduler.DefaultConfig()
	// The scheduler and the controller run as themselves, so that what
	// they may do is tested too; the simulated nodes and the test itself
	// act as the administrator.
	schedCfg.Client = testenv.NewClientAs(t, srv, auth.SchedulerUser)
	wg.Go(func() {
		if err := scheduler.Run(runCtx, schedCfg); err != nil {
			t.Errorf("scheduler: %v", err)
		}
	})

	cc := testenv.NewClientAs(t, srv, auth.ControllersUser)
	factory = informers.NewFactory(cc, time.Minute)
	rec := events.NewRecorder(runCtx, cc, "controllers")
	t.Cleanup(rec.Stop)
	ctrl, err := nodelifecycle.New(controller.Deps{Client: cc, Informers: factory, Recorder: rec}, nodelifecycle.Config{GracePeriod: grace, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(runCtx)
	if !factory.WaitForCacheSync(ctx) {
		t.Fatal("caches did not sync")
	}
	wg.Go(func() { ctrl.Run(runCtx) })

	// Two pods on lost-0: one with the default tolerations, one that
	// tolerates an unreachable node forever.
	for name, tolerations := range map[string][]corev1.Toleration{
		"web":   nil,
		"agent": {{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}},
	} {
		_, err := c.Pods("default").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.PodSpec{
				NodeSelector: map[string]string{corev1.LabelHostname: "lost-0"},
				Containers:   []corev1.Container{{Name: "app", Image: "nginx"}},
				Tolerations:  tolerations,
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"web", "agent"} {
		wait.For(t, 10*time.Second, "pod "+name+" running on lost-0", func() (bool, error) {
			pod, err := c.Pods("default").Get(ctx, name)
			return err == nil && pod.Spec.NodeName == "lost-0" && podReady(pod) == corev1.ConditionTrue, err
		})
	}
	node, _ := c.Nodes().Get(ctx, "lost-0")
	if len(node.Spec.Taints) != 0 {
		t.Fatalf("healthy node has taints %v", node.Spec.Taints)
	}

	// The node has heartbeated through its Lease (the pods may run
	// before its first renewal), and then it dies.
	wait.For(t, 5*time.Second, "lost-0 renewing its Lease", func() (bool, error) {
		l, err := c.Leases(corev1.NamespaceNodeLease).Get(ctx, "lost-0")
		return err == nil && l.Spec.RenewTime != nil, nil
	})
	kill()
	<-lostDone
	died := time.Now()
	wait.For(t, grace+heartbeat+3*time.Second, "lost-0 tainted unreachable and not ready", func() (bool, error) {
		node, err := c.Nodes().Get(ctx, "lost-0")
		if err != nil {
			return false, err
		}
		return hasTaint(node, corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute) &&
			hasTaint(node, corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule) &&
			nodeCondition(node, corev1.NodeReady).Status == corev1.ConditionUnknown, nil
	})
	if d := time.Since(died); d < grace-heartbeat {
		t.Errorf("node tainted %v after it died, before the grace period %v", d, grace)
	}
	t.Logf("node tainted %v after it died", time.Since(died).Round(time.Millisecond))
	if ok, _ := c.Nodes().Get(ctx, "ok-0"); len(ok.Spec.Taints) != 0 {
		t.Errorf("healthy node ok-0 has taints %v", ok.Spec.Taints)
	}

	wait.For(t, tolerationSeconds*time.Second+3*time.Second, "pod web evicted", func() (bool, error) {
		pod, err := c.Pods("default").Get(ctx, "web")
		return err == nil && pod.DeletionTimestamp != nil, err
	})
	t.Logf("pod evicted %v after the node died", time.Since(died).Round(time.Millisecond))
	node, _ = c.Nodes().Get(ctx, "lost-0")
	tainted := taintAdded(node)
	web, _ := c.Pods("default").Get(ctx, "web")
	// timeAdded and deletionTimestamp keep whole seconds.
	if d := web.DeletionTimestamp.Sub(tainted); d < (tolerationSeconds-1)*time.Second {
		t.Errorf("pod web evicted %v after the taint, want about %ds (its toleration)", d, tolerationSeconds)
	}
	agent, err := c.Pods("default").Get(ctx, "agent")
	if err != nil || agent.DeletionTimestamp != nil || podReady(agent) != corev1.ConditionFalse {
		t.Errorf("pod agent: got %v, deleting %v, Ready %s; want kept with Ready=False", err, agent.DeletionTimestamp != nil, podReady(agent))
	}

	// The node comes back.
	startSim(runCtx, simCfg("lost-", "10.129.0.0/16"))
	wait.For(t, 5*time.Second, "lost-0 untainted and ready", func() (bool, error) {
		node, err := c.Nodes().Get(ctx, "lost-0")
		if err != nil {
			return false, err
		}
		return len(node.Spec.Taints) == 0 && nodeCondition(node, corev1.NodeReady).Status == corev1.ConditionTrue,
			fmt.Errorf("taints %v, Ready %s", taintStrings(node.Spec.Taints), nodeCondition(node, corev1.NodeReady).Status)
	})
	// Its kubelet confirms the eviction.
	wait.For(t, 5*time.Second, "pod web gone", func() (bool, error) {
		_, err := c.Pods("default").Get(ctx, "web")
		return apierrors.IsNotFound(err), nil
	})
}

func hasTaint(node *corev1.Node, key string, effect corev1.TaintEffect) bool {
	for _, t := range node.Spec.Taints {
		if t.Key == key && t.Effect == effect {
			return true
		}
	}
	return false
}

func taintAdded(node *corev1.Node) time.Time {
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoExecute && t.TimeAdded != nil {
			return t.TimeAdded.Time
		}
	}
	return time.Time{}
}
