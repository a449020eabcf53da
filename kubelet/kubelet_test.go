package kubelet_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/nodetest"
	"github.com/skiffdev/skiff/internal/nsutil"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
	"github.com/skiffdev/skiff/kubelet"
)

func TestMain(m *testing.M) { nodetest.Main(m) }

// cluster is a test cluster with one real node.
type cluster struct {
	*testenv.Cluster
	node *nodetest.Node
}

func startCluster(t testing.TB) *cluster {
	t.Helper()
	nodetest.SkipIfUnavailable(t)
	var node *nodetest.Node
	cl := testenv.NewCluster(t,
		testenv.WithServer(func(cfg *apiserver.Config) {
			cfg.KubeletDialer = func(ctx context.Context, addr string) (net.Conn, error) { return node.Dial(ctx, addr) }
		}),
		testenv.WithTimeout(10*time.Minute))
	node = nodetest.Start(t, cl.Server, func(cfg *kubelet.Config) {
		cfg.InitialBackoff = time.Second
		cfg.MaxBackoff = 4 * time.Second
	})
	node.WaitReady(cl.Client)
	return &cluster{Cluster: cl, node: node}
}

// pod returns a pod for the node running the test image.
func (cl *cluster) pod(name string, containers ...corev1.Container) *corev1.Pod {
	for i := range containers {
		if containers[i].Image == "" {
			containers[i].Image = cl.node.Image
		}
		containers[i].ImagePullPolicy = corev1.PullIfNotPresent
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:                      cl.node.Name,
			Containers:                    containers,
			TerminationGracePeriodSeconds: ptr.To[int64](2),
		},
	}
}

// with returns the cluster for use by subtest t.
func (cl *cluster) with(t testing.TB) *cluster {
	return &cluster{Cluster: cl.For(t), node: cl.node}
}

func (cl *cluster) create(p *corev1.Pod) *corev1.Pod {
	cl.T.Helper()
	out, err := cl.Client.Pods(p.Namespace).Create(cl.Ctx, p)
	if err != nil {
		cl.T.Fatalf("creating pod %s: %v", p.Name, err)
	}
	return out
}

// wait waits until the pod satisfies cond.
func (cl *cluster) wait(name, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	cl.T.Helper()
	var last *corev1.Pod
	cl.Await(90*time.Second, "pod "+name+" "+what, func() (bool, error) {
		if cl.node.Exited() {
			return false, fmt.Errorf("the kubelet exited")
		}
		p, err := cl.Client.Pods("default").Get(cl.Ctx, name)
		if err != nil {
			return false, err
		}
		last = p
		return cond(p), nil
	})
	return last
}

func running(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }

func status(p *corev1.Pod, name string) corev1.ContainerStatus {
	for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
		if cs.Name == name {
			return cs
		}
	}
	return corev1.ContainerStatus{}
}

func condition(p *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

func (cl *cluster) logs(name string, opts *corev1.PodLogOptions) string {
	cl.T.Helper()
	var b bytes.Buffer
	if err := cl.Client.PodLogs(cl.Ctx, "default", name, opts, &b); err != nil {
		cl.T.Fatalf("logs of %s: %v", name, err)
	}
	return b.String()
}

// waitLogs waits until the container's log contains want.
func (cl *cluster) waitLogs(name, container, want string) {
	cl.T.Helper()
	cl.Await(60*time.Second, fmt.Sprintf("logs of %s/%s to contain %q", name, container, want), func() (bool, error) {
		var b bytes.Buffer
		err := cl.Client.PodLogs(cl.Ctx, "default", name, &corev1.PodLogOptions{Container: container}, &b)
		return err == nil && strings.Contains(b.String(), want), nil
	})
}

func (cl *cluster) delete(name string) {
	cl.T.Helper()
	if err := cl.Client.Pods("default").Delete(cl.Ctx, name, metav1.DeleteOptions{}); err != nil {
		cl.T.Fatalf("deleting %s: %v", name, err)
	}
	cl.Await(60*time.Second, "pod "+name+" to be gone", func() (bool, error) {
		_, err := cl.Client.Pods("default").Get(cl.Ctx, name)
		return apierrors.IsNotFound(err), nil
	})
}

func sh(script string) []string { return []string{"sh", "-c", script} }

func TestKubelet(t *testing.T) {
	cl := startCluster(t)

	t.Run("containers of a pod share localhost, hostname and an emptyDir", func(t *testing.T) {
		cl := cl.with(t)
		p := cl.pod("web",
			corev1.Container{Name: "httpd", Command: []string{"httpd", "-f", "-p", "8080", "-h", "/var/www"},
				VolumeMounts: []corev1.VolumeMount{{Name: "shared", MountPath: "/shared"}}},
			corev1.Container{Name: "client", Command: sh(`echo from-httpd-side > /shared/f 2>/dev/null; until wget -q -O - http://localhost:8080/; do sleep 0.2; done; echo host=$(hostname); until cat /shared/g; do sleep 0.2; done; sleep 3600`),
				VolumeMounts: []corev1.VolumeMount{{Name: "shared", MountPath: "/shared"}}},
		)
		p.Spec.Containers[0].Command = sh(`echo shared-data > /shared/g; exec httpd -f -p 8080 -h /var/www`)
		p.Spec.Volumes = []corev1.Volume{{Name: "shared", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		cl.create(p)
		got := cl.wait("web", "to run", running)
		if got.Status.PodIP == "" || !strings.HasPrefix(got.Status.PodIP, "10.244.0.") {
			t.Errorf("podIP: got %q, want an address of 10.244.0.0/24", got.Status.PodIP)
		}
		cl.waitLogs("web", "client", "hello from skiff")
		cl.waitLogs("web", "client", "host=web")
		cl.waitLogs("web", "client", "shared-data")
		got = cl.wait("web", "to be Ready", func(p *corev1.Pod) bool { return condition(p, corev1.PodReady) == corev1.ConditionTrue })
		cs := status(got, "httpd")
		if !strings.HasPrefix(cs.ContainerID, "skiff://") || !strings.Contains(cs.ImageID, "@sha256:") || cs.State.Running == nil || !ptr.Deref(cs.Started, false) {
			t.Errorf("httpd status: got %+v, want running, started, with containerID and imageID", cs)
		}
		cl.delete("web")
	})

	t.Run("user, group, environment and working directory", func(t *testing.T) {
		cl := cl.with(t)
		p := cl.pod("whoami", corev1.Container{Name: "c",
			Command:    sh(`echo "uid=$(id -u) gid=$(id -g) groups=$(id -G) pwd=$(pwd) greeting=$GREETING pod=$POD_NAME host=$HOSTNAME"; sleep 3600`),
			WorkingDir: "/tmp",
			Env: []corev1.EnvVar{
				{Name: "NAME", Value: "skiff"},
				{Name: "GREETING", Value: "hello $(NAME)"},
				{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			},
			SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](1000)},
		})
		p.Spec.SecurityContext = &corev1.PodSecurityContext{SupplementalGroups: []int64{2000}}
		cl.create(p)
		cl.wait("whoami", "to run", running)
		cl.waitLogs("whoami", "c", "uid=1000 gid=1000 groups=1000 2000 pwd=/tmp greeting=hello skiff pod=whoami host=whoami\n")
		cl.delete("whoami")
	})

	t.Run("memory limit gives OOMKilled", func(t *testing.T) {
		cl := cl.with(t)
		// The limit leaves room for libcontainer's init (this test binary,
		// race-enabled under make test), which runs in the cgroup before
		// it execs the shell.
		p := cl.pod("oom", corev1.Container{Name: "hog", Command: sh(`x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done`),
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")}}})
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		cl.create(p)
		got := cl.wait("oom", "to fail", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		term := status(got, "hog").State.Terminated
		if term == nil || term.Reason != "OOMKilled" || term.ExitCode != 137 {
			t.Errorf("terminated state: got %+v, want reason OOMKilled and exit code 137", term)
		}
		cl.delete("oom")
	})

	t.Run("a crashing container backs off", func(t *testing.T) {
		cl := cl.with(t)
		cl.create(cl.pod("crash", corev1.Container{Name: "c", Command: sh(`echo attempt; exit 3`)}))
		sawBackoff := false
		got := cl.wait("crash", "to be restarted twice, in CrashLoopBackOff", func(p *corev1.Pod) bool {
			cs := status(p, "c")
			if w := cs.State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" {
				sawBackoff = true
			}
			return sawBackoff && cs.RestartCount >= 2
		})
		last := status(got, "c").LastTerminationState.Terminated
		if last == nil || last.ExitCode != 3 || last.Reason != "Error" {
			t.Errorf("lastState: got %+v, want terminated with exit code 3, reason Error", last)
		}
		if got.Status.Phase != corev1.PodRunning {
			t.Errorf("phase: got %v, want Running (restartPolicy Always)", got.Status.Phase)
		}
		if prev := cl.logs("crash", &corev1.PodLogOptions{Previous: true}); !strings.Contains(prev, "attempt") {
			t.Errorf("previous logs: got %q, want the previous run's output", prev)
		}
		cl.delete("crash")
	})

	t.Run("liveness failure restarts; readiness follows the probe", func(t *testing.T) {
		cl := cl.with(t)
		// The liveness probe fails only once the test says so (/tmp/dead),
		// never because it ran before the container's first command, and
		// no probe fails by timing out on a loaded machine.
		p := cl.pod("probed", corev1.Container{Name: "app",
			Command: sh(`sleep 3600`),
			LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "test ! -e /tmp/dead"}}},
				PeriodSeconds: 1, FailureThreshold: 1, TimeoutSeconds: 30},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/ready"}}},
				PeriodSeconds: 1, FailureThreshold: 1, TimeoutSeconds: 30},
		})
		p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
		cl.create(p)
		cl.wait("probed", "to run, not ready", func(p *corev1.Pod) bool {
			return running(p) && condition(p, corev1.PodReady) == corev1.ConditionFalse && status(p, "app").State.Running != nil
		})
		cl.exec("probed", 0, "touch", "/tmp/ready")
		cl.wait("probed", "to be Ready", func(p *corev1.Pod) bool { return condition(p, corev1.PodReady) == corev1.ConditionTrue })
		cl.exec("probed", 0, "rm", "/tmp/ready")
		cl.wait("probed", "to be not Ready again", func(p *corev1.Pod) bool { return condition(p, corev1.PodReady) == corev1.ConditionFalse })
		before := status(cl.wait("probed", "", func(*corev1.Pod) bool { return true }), "app").ContainerID
		cl.exec("probed", 0, "touch", "/tmp/dead")
		got := cl.wait("probed", "to be restarted by its liveness probe", func(p *corev1.Pod) bool {
			cs := status(p, "app")
			return cs.RestartCount >= 1 && cs.State.Running != nil
		})
		if cs := status(got, "app"); cs.ContainerID == before {
			t.Errorf("containerID after the restart: still %s", before)
		}
		cl.delete("probed")
	})

	t.Run("init containers run first, in order", func(t *testing.T) {
		cl := cl.with(t)
		p := cl.pod("inits", corev1.Container{Name: "main", Command: sh(`cat /work/order; sleep 3600`),
			VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: "/work"}}})
		p.Spec.InitContainers = []corev1.Container{
			{Name: "first", Image: cl.node.Image, Command: sh(`echo one > /work/order`), VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: "/work"}}},
			{Name: "second", Image: cl.node.Image, Command: sh(`echo two >> /work/order`), VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: "/work"}}},
		}
		p.Spec.Volumes = []corev1.Volume{{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		cl.create(p)
		got := cl.wait("inits", "to run", running)
		cl.waitLogs("inits", "main", "one\ntwo\n")
		for _, name := range []string{"first", "second"} {
			if term := status(got, name).State.Terminated; term == nil || term.Reason != "Completed" {
				t.Errorf("init container %s: got %+v, want terminated Completed", name, status(got, name).State)
			}
		}
		if condition(got, corev1.PodInitialized) != corev1.ConditionTrue {
			t.Errorf("Initialized: got %v, want True", condition(got, corev1.PodInitialized))
		}
		cl.delete("inits")
	})

	t.Run("logs follow a container to its end", func(t *testing.T) {
		cl := cl.with(t)
		p := cl.pod("ticker", corev1.Container{Name: "t", Command: sh(`i=0; while [ $i -lt 5 ]; do echo tick $i; i=$((i+1)); sleep 0.2; done`)})
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		cl.create(p)
		cl.wait("ticker", "to start", func(p *corev1.Pod) bool { return p.Status.Phase != corev1.PodPending })
		out := cl.logs("ticker", &corev1.PodLogOptions{Follow: true})
		if want := "tick 0\ntick 1\ntick 2\ntick 3\ntick 4\n"; out != want {
			t.Errorf("followed logs: got %q, want %q", out, want)
		}
		got := cl.wait("ticker", "to succeed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
		if term := status(got, "t").State.Terminated; term == nil || term.Reason != "Completed" || term.ExitCode != 0 {
			t.Errorf("terminated: got %+v, want Completed with exit code 0", term)
		}
		if tail := cl.logs("ticker", &corev1.PodLogOptions{TailLines: ptr.To[int64](2)}); tail != "tick 3\ntick 4\n" {
			t.Errorf("--tail 2: got %q", tail)
		}
		cl.delete("ticker")
	})

	t.Run("exec with and without a terminal", func(t *testing.T) {
		cl := cl.with(t)
		cl.create(cl.pod("shell", corev1.Container{Name: "sh", Command: sh(`sleep 3600`)}))
		cl.wait("shell", "to run", running)
		if out := cl.exec("shell", 3, "sh", "-c", "echo out; echo err >&2; exit 3"); out != "out\n" {
			t.Errorf("exec stdout: got %q", out)
		}
		var stdout bytes.Buffer
		code, err := cl.Client.PodExec(cl.Ctx, "default", "shell", client.ExecOptions{Command: []string{"cat"}, Stdin: strings.NewReader("piped input\n"), Stdout: &stdout})
		if err != nil || code != 0 || stdout.String() != "piped input\n" {
			t.Errorf("exec cat with stdin: got %q, code %d, err %v", stdout.String(), code, err)
		}
		resize := make(chan client.TerminalSize, 1)
		resize <- client.TerminalSize{Width: 100, Height: 40}
		stdout.Reset()
		code, err = cl.Client.PodExec(cl.Ctx, "default", "shell", client.ExecOptions{Command: []string{"sh", "-c", "test -t 0 && test -t 1 && echo on-a-tty"}, TTY: true, Stdin: strings.NewReader(""), Stdout: &stdout, Resize: resize})
		if err != nil || code != 0 || !strings.Contains(stdout.String(), "on-a-tty") {
			t.Errorf("exec with a tty: got %q, code %d, err %v", stdout.String(), code, err)
		}
		cl.delete("shell")
	})

	t.Run("deletion sends SIGTERM first", func(t *testing.T) {
		cl := cl.with(t)
		dir := t.TempDir()
		p := cl.pod("graceful", corev1.Container{Name: "c",
			Command:      sh(`trap 'echo got-TERM > /host/out; exit 0' TERM; touch /host/trapped; while true; do sleep 0.1; done`),
			VolumeMounts: []corev1.VolumeMount{{Name: "host", MountPath: "/host"}}})
		p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
		p.Spec.Volumes = []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}}}}
		cl.create(p)
		cl.wait("graceful", "to run", running)
		// Running is when the process started, not when its shell has set
		// the trap: a SIGTERM before that would end it unseen.
		wait.For(t, time.Minute, "the container's trap to be set", func() (bool, error) {
			_, err := os.Stat(filepath.Join(dir, "trapped"))
			return err == nil, err
		})
		cl.delete("graceful")
		b, err := os.ReadFile(filepath.Join(dir, "out"))
		if err != nil || string(b) != "got-TERM\n" {
			t.Errorf("what the container wrote on SIGTERM: got %q (%v), want got-TERM", b, err)
		}
	})

	t.Run("an image that does not exist backs off", func(t *testing.T) {
		cl := cl.with(t)
		bad := strings.Replace(cl.node.Image, "/busybox:", "/does-not-exist:", 1)
		cl.create(cl.pod("noimage", corev1.Container{Name: "c", Image: bad}))
		got := cl.wait("noimage", "to be in ImagePullBackOff", func(p *corev1.Pod) bool {
			w := status(p, "c").State.Waiting
			return w != nil && w.Reason == "ImagePullBackOff"
		})
		if msg := status(got, "c").State.Waiting.Message; !strings.Contains(msg, "does-not-exist") || !strings.Contains(strings.ToLower(msg), "unknown") {
			t.Errorf("ImagePullBackOff message: got %q, want the registry's error naming the image", msg)
		}
		cl.delete("noimage")
	})

	t.Run("a restarted kubelet adopts running containers and finishes deletions", func(t *testing.T) {
		cl := cl.with(t)
		cl.create(cl.pod("survivor", corev1.Container{Name: "c", Command: sh(`sleep 3600`)}))
		cl.create(cl.pod("doomed", corev1.Container{Name: "c", Command: sh(`sleep 3600`)}))
		before := cl.wait("survivor", "to run", running)
		cl.wait("doomed", "to run", running)
		cl.node.Kill()
		// Deleted while the kubelet is down: the object waits for it.
		if err := cl.Client.Pods("default").Delete(cl.Ctx, "doomed", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		cl.node.Restart()
		cl.create(cl.pod("after", corev1.Container{Name: "c", Command: sh(`sleep 3600`)}))
		cl.wait("after", "to run under the new kubelet", running)
		wait.For(t, 60*time.Second, "pod doomed to be gone", func() (bool, error) {
			_, err := cl.Client.Pods("default").Get(cl.Ctx, "doomed")
			return apierrors.IsNotFound(err), nil
		})
		got := cl.wait("survivor", "to be Ready under the new kubelet", func(p *corev1.Pod) bool { return condition(p, corev1.PodReady) == corev1.ConditionTrue })
		b, a := status(before, "c"), status(got, "c")
		if a.ContainerID != b.ContainerID || a.RestartCount != 0 || a.State.Running == nil {
			t.Errorf("survivor after the kubelet restart: got %s restarts %d state %+v, want %s still running, no restarts", a.ContainerID, a.RestartCount, a.State, b.ContainerID)
		}
		cl.delete("survivor")
		cl.delete("after")
	})

	t.Run("nothing is left behind", func(t *testing.T) {
		cl := cl.with(t)
		for _, dir := range []string{cl.node.Config.RootDir, cl.node.Config.StateDir} {
			if m := nodetest.MountsUnder(dir); len(m) > 0 {
				t.Errorf("mounts left under %s: %v", dir, m)
			}
		}
		if dirs := nodetest.CgroupDirs(cl.node.Config.CgroupRoot); len(dirs) > 0 {
			for _, d := range dirs {
				if filepath.Base(d) != strings.TrimPrefix(cl.node.Config.CgroupRoot, "/") {
					t.Errorf("cgroup left: %s", d)
				}
			}
		}
		for _, dir := range []string{
			filepath.Join(cl.node.Config.RootDir, "pods"),
			filepath.Join(cl.node.Config.RootDir, "containers"),
			filepath.Join(cl.node.Config.StateDir, "runtime", "containers"),
			filepath.Join(cl.node.Config.StateDir, "runtime", "sandboxes"),
			filepath.Join(cl.node.Config.StateDir, "pods"),
			filepath.Join(cl.node.Config.RootDir, "network", "ips"),
		} {
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Errorf("%s: %d entries left, want none", dir, len(entries))
			}
		}
		err := nsutil.Do(cl.node.NetNS, func() error {
			links, err := netlink.LinkList()
			if err != nil {
				return err
			}
			for _, l := range links {
				if name := l.Attrs().Name; name != "lo" && name != cl.node.Config.Bridge {
					t.Errorf("link left in the node's namespace: %s", name)
				}
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	})
}

// exec runs a command in the pod's only container, expects exit code
// want, and returns its output.
func (cl *cluster) exec(pod string, want int, cmd ...string) string {
	cl.T.Helper()
	var out bytes.Buffer
	code, err := cl.Client.PodExec(cl.Ctx, "default", pod, client.ExecOptions{Command: cmd, Stdout: &out})
	if err != nil {
		cl.T.Fatalf("exec %v in %s: %v", cmd, pod, err)
	}
	if code != want {
		cl.T.Fatalf("exec %v in %s: exit code %d, want %d (output %q)", cmd, pod, code, want, out.String())
	}
	return out.String()
}
