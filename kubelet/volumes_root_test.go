package kubelet_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/internal/nodetest"
)

func (cl *cluster) createConfigMap(name string, data map[string]string) {
	cl.T.Helper()
	if _, err := cl.Client.ConfigMaps("default").Create(cl.Ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data}); err != nil {
		cl.T.Fatalf("creating configmap %s: %v", name, err)
	}
}

func (cl *cluster) updateConfigMap(name string, data map[string]string) {
	cl.T.Helper()
	cm, err := cl.Client.ConfigMaps("default").Get(cl.Ctx, name)
	if err != nil {
		cl.T.Fatal(err)
	}
	cm.Data = data
	if _, err := cl.Client.ConfigMaps("default").Update(cl.Ctx, cm); err != nil {
		cl.T.Fatalf("updating configmap %s: %v", name, err)
	}
}

func (cl *cluster) createSecret(name string, data map[string]string) {
	cl.T.Helper()
	if _, err := cl.Client.Secrets("default").Create(cl.Ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: data}); err != nil {
		cl.T.Fatalf("creating secret %s: %v", name, err)
	}
}

// deleteClean deletes the pod and checks that nothing stays mounted
// under its directory on the node.
func (cl *cluster) deleteClean(p *corev1.Pod) {
	cl.T.Helper()
	cl.delete(p.Name)
	if m := nodetest.MountsUnder(filepath.Join(cl.node.Config.RootDir, "pods", string(p.UID))); len(m) > 0 {
		cl.T.Errorf("mounts left after pod %s: %v", p.Name, m)
	}
}

// hasLines reports which of want are missing from the lines of out.
func missingLines(out string, want ...string) []string {
	lines := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	var missing []string
	for _, w := range want {
		if !lines[w] {
			missing = append(missing, w)
		}
	}
	return missing
}

// TestConfigMapsAndSecrets runs pods that read ConfigMaps, Secrets and
// their own fields through their environment and their volumes.
func TestConfigMapsAndSecrets(t *testing.T) {
	cl := startCluster(t)
	ref := func(n string) corev1.LocalObjectReference { return corev1.LocalObjectReference{Name: n} }
	cl.createConfigMap("app-config", map[string]string{"mode": "fast", "level": "3"})
	cl.createSecret("app-secret", map[string]string{"password": "s3cret", "user": "admin"})
	if _, err := cl.Client.ServiceAccounts("default").Create(cl.Ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}); err != nil {
		t.Fatal(err)
	}

	t.Run("env and envFrom from both kinds, and every fieldRef", func(t *testing.T) {
		cl := cl.with(t)
		field := func(path string) *corev1.EnvVarSource {
			return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
		}
		p := cl.pod("env", corev1.Container{Name: "c", Command: sh(`env; sleep 3600`),
			EnvFrom: []corev1.EnvFromSource{
				{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: ref("app-config")}},
				{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: ref("app-secret")}},
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: ref("nowhere"), Optional: ptr.To(true)}},
			},
			Env: []corev1.EnvVar{
				{Name: "MODE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: ref("app-config"), Key: "mode"}}},
				{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: ref("app-secret"), Key: "password"}}},
				{Name: "OPTIONAL", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: ref("app-secret"), Key: "nope", Optional: ptr.To(true)}}},
				{Name: "GREETING", Value: "mode $(MODE)"},
				{Name: "POD_NAME", ValueFrom: field("metadata.name")},
				{Name: "POD_NAMESPACE", ValueFrom: field("metadata.namespace")},
				{Name: "POD_UID", ValueFrom: field("metadata.uid")},
				{Name: "APP", ValueFrom: field("metadata.labels['app']")},
				{Name: "NOTE", ValueFrom: field("metadata.annotations['note']")},
				{Name: "NODE", ValueFrom: field("spec.nodeName")},
				{Name: "SA", ValueFrom: field("spec.serviceAccountName")},
				{Name: "HOST_IP", ValueFrom: field("status.hostIP")},
				{Name: "HOST_IPS", ValueFrom: field("status.hostIPs")},
				{Name: "POD_IP", ValueFrom: field("status.podIP")},
				{Name: "POD_IPS", ValueFrom: field("status.podIPs")},
				{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
			},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}},
		})
		p.Labels = map[string]string{"app": "web"}
		p.Annotations = map[string]string{"note": "hello there"}
		p.Spec.ServiceAccountName = "robot"
		p = cl.create(p)
		got := cl.wait("env", "to run", running)
		cl.waitLogs("env", "c", "POD_NAME=env")
		out := cl.logs("env", &corev1.PodLogOptions{})
		ip, host := got.Status.PodIP, cl.node.Config.NodeIP
		if missing := missingLines(out,
			"CFG_mode=fast", "CFG_level=3", "password=s3cret", "user=admin", "MODE=fast", "PASSWORD=s3cret",
			"GREETING=mode fast", "POD_NAME=env", "POD_NAMESPACE=default", "POD_UID="+string(p.UID), "APP=web",
			"NOTE=hello there", "NODE="+cl.node.Name, "SA=robot", "HOST_IP="+host, "HOST_IPS="+host,
			"POD_IP="+ip, "POD_IPS="+ip, "MEM=64",
		); len(missing) > 0 || ip == "" {
			t.Errorf("environment lacks %q (pod IP %q):\n%s", missing, ip, out)
		}
		if strings.Contains(out, "OPTIONAL=") {
			t.Errorf("an optional variable whose key is missing is set:\n%s", out)
		}
		cl.deleteClean(p)
	})

	t.Run("configMap, secret, downwardAPI and projected volumes with modes and items", func(t *testing.T) {
		cl := cl.with(t)
		mode := func(m int32) *int32 { return &m }
		p := cl.pod("vols", corev1.Container{Name: "c", Command: sh(`sleep 3600`),
			VolumeMounts: []corev1.VolumeMount{
				{Name: "cfg", MountPath: "/cfg"}, {Name: "sec", MountPath: "/sec"},
				{Name: "info", MountPath: "/info"}, {Name: "all", MountPath: "/all"},
			}})
		p.Labels = map[string]string{"app": "vols", "tier": "back"}
		p.Spec.Volumes = []corev1.Volume{
			{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("app-config")}}},
			{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "app-secret", DefaultMode: mode(0o400),
				Items: []corev1.KeyToPath{{Key: "password", Path: "db/password"}, {Key: "user", Path: "user", Mode: mode(0o440)}}}}},
			{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
				{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}, Mode: mode(0o600)},
				{Path: "cpu", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "c", Resource: "requests.cpu", Divisor: resource.MustParse("1m")}},
			}}}},
			{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{DefaultMode: mode(0o444), Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: ref("app-config"), Items: []corev1.KeyToPath{{Key: "mode", Path: "config/mode"}}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: ref("app-secret"), Items: []corev1.KeyToPath{{Key: "user", Path: "user", Mode: mode(0o400)}}}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
			}}}},
		}
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}
		p = cl.create(p)
		cl.wait("vols", "to run", running)
		out := cl.exec("vols", 0, "sh", "-c", `for f in /cfg/mode /cfg/level /sec/db/password /sec/user /info/name /info/cpu /all/config/mode /all/user /all/namespace; do echo "$f $(stat -L -c %a $f) $(cat $f)"; done; echo "labels $(stat -L -c %a /info/labels) $(cat /info/labels | tr '\n' ' ')"`)
		if missing := missingLines(out,
			"/cfg/mode 644 fast", "/cfg/level 644 3",
			"/sec/db/password 400 s3cret", "/sec/user 440 admin",
			"/info/name 644 vols", "/info/cpu 644 100", `labels 600 app="vols" tier="back"`,
			"/all/config/mode 444 fast", "/all/user 400 admin", "/all/namespace 444 default",
		); len(missing) > 0 {
			t.Errorf("volume files lack %q:\n%s", missing, out)
		}
		// Secrets and projected volumes are on a tmpfs, never on the
		// node's disk; all four are read-only.
		mounts := cl.exec("vols", 0, "cat", "/proc/mounts")
		for _, m := range []struct{ dir, fs string }{{"/sec", "tmpfs"}, {"/all", "tmpfs"}, {"/cfg", ""}, {"/info", ""}} {
			var line string
			for _, l := range strings.Split(mounts, "\n") {
				if f := strings.Fields(l); len(f) > 3 && f[1] == m.dir {
					line = l
				}
			}
			f := strings.Fields(line)
			switch {
			case line == "":
				t.Errorf("%s is not a mount:\n%s", m.dir, mounts)
			case m.fs != "" && f[2] != m.fs:
				t.Errorf("%s: got file system %s, want %s", m.dir, f[2], m.fs)
			case !strings.HasPrefix(f[3], "ro"):
				t.Errorf("%s: got options %s, want read-only", m.dir, f[3])
			}
		}
		cl.exec("vols", 1, "sh", "-c", "echo x > /cfg/mode")
		cl.deleteClean(p)
	})

	t.Run("an update is seen in the mounted file and never torn, but not through a subPath", func(t *testing.T) {
		cl := cl.with(t)
		cl.createConfigMap("live", map[string]string{"a": "v0", "b": "v0"})
		// The reader compares two files of one version (..data resolved
		// once) and checks that a file read through its name is always
		// some whole version.
		p := cl.pod("reader", corev1.Container{Name: "c", Command: sh(`n=0
while true; do
  d=$(readlink /cfg/..data)
  a=$(cat /cfg/$d/a 2>/dev/null) && b=$(cat /cfg/$d/b 2>/dev/null) && [ "$a" != "$b" ] && echo "TORN $a $b"
  case "$(cat /cfg/a)" in v[0-9]*) ;; *) echo "BAD $(cat /cfg/a)";; esac
  n=$((n+1)); [ $((n % 200)) = 0 ] && echo "read $n"
  sleep 0.005
done`),
			VolumeMounts: []corev1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}, {Name: "cfg", MountPath: "/pinned", SubPath: "a"}}})
		p.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("live")}}}}
		p = cl.create(p)
		cl.wait("reader", "to run", running)
		cl.waitLogs("reader", "c", "read 200")
		for i := 1; i <= 5; i++ {
			v := fmt.Sprintf("v%d", i)
			cl.updateConfigMap("live", map[string]string{"a": v, "b": v})
			cl.Await(time.Minute, "the mounted file to read "+v, func() (bool, error) {
				return strings.TrimSpace(cl.exec("reader", 0, "cat", "/cfg/a")) == v, nil
			})
		}
		if got := strings.TrimSpace(cl.exec("reader", 0, "cat", "/pinned")); got != "v0" {
			t.Errorf("subPath mount: got %q, want the first version v0 (a subPath does not follow updates)", got)
		}
		// A new key appears, a removed one goes.
		cl.updateConfigMap("live", map[string]string{"a": "v9", "c": "new"})
		cl.Await(time.Minute, "key c to appear and b to go", func() (bool, error) {
			out := cl.exec("reader", 0, "sh", "-c", "cat /cfg/c; ls /cfg")
			return strings.Contains(out, "new") && !strings.Contains(out, "b\n"), nil
		})
		out := cl.logs("reader", &corev1.PodLogOptions{})
		if strings.Contains(out, "TORN") || strings.Contains(out, "BAD") {
			t.Errorf("the reader saw a torn update:\n%s", out)
		}
		cl.deleteClean(p)
	})

	t.Run("a missing ConfigMap or Secret holds the pod until it is created", func(t *testing.T) {
		cl := cl.with(t)
		p := cl.pod("late", corev1.Container{Name: "c", Command: sh(`echo "k=$K"; echo "token=$(cat /s/token)"; sleep 3600`),
			Env:          []corev1.EnvVar{{Name: "K", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: ref("late-config"), Key: "k"}}}},
			VolumeMounts: []corev1.VolumeMount{{Name: "s", MountPath: "/s"}}})
		p.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "late-secret"}}}}
		p = cl.create(p)
		waiting := func(msg string) {
			cl.T.Helper()
			cl.wait("late", "to wait with "+msg, func(p *corev1.Pod) bool {
				w := status(p, "c").State.Waiting
				return w != nil && w.Reason == "CreateContainerConfigError" && w.Message == msg
			})
		}
		waiting(`MountVolume.SetUp failed for volume "s" : secret "late-secret" not found`)
		cl.createSecret("late-secret", map[string]string{"token": "t0ken"})
		waiting(`configmap "late-config" not found`)
		cl.createConfigMap("late-config", map[string]string{"other": "x"})
		waiting(`couldn't find key k in ConfigMap default/late-config`)
		cl.updateConfigMap("late-config", map[string]string{"k": "here"})
		cl.wait("late", "to run", running)
		cl.waitLogs("late", "c", "k=here")
		cl.waitLogs("late", "c", "token=t0ken")
		cl.deleteClean(p)
	})

	t.Run("emptyDir medium Memory is a tmpfs of sizeLimit", func(t *testing.T) {
		cl := cl.with(t)
		p := cl.pod("mem", corev1.Container{Name: "c", Command: sh(`sleep 3600`),
			VolumeMounts: []corev1.VolumeMount{{Name: "m", MountPath: "/mem"}}})
		p.Spec.Volumes = []corev1.Volume{{Name: "m", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
			Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("4Mi"))}}}}
		p = cl.create(p)
		cl.wait("mem", "to run", running)
		line := cl.exec("mem", 0, "sh", "-c", `grep ' /mem ' /proc/mounts`)
		if f := strings.Fields(line); len(f) < 4 || f[2] != "tmpfs" || !strings.Contains(f[3], "size=4096k") {
			t.Errorf("/mem: got %q, want a tmpfs with size=4096k", line)
		}
		// Bounded: writing past the limit fails.
		cl.exec("mem", 0, "sh", "-c", "dd if=/dev/zero of=/mem/fits bs=1M count=2")
		cl.exec("mem", 1, "sh", "-c", "dd if=/dev/zero of=/mem/big bs=1M count=8")
		cl.deleteClean(p)
	})
}
