package kubelet_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// BenchmarkPods measures a real node with the image already pulled:
// creation-to-Running of 50 pods created one after another (seen through
// a watch), the time until 100 pods created at once all run, and the
// kubelet's RSS idle and with those 100 pods.
//
//	sudo go test -run '^$' -bench BenchmarkPods -benchtime 1x ./kubelet/
func BenchmarkPods(b *testing.B) {
	cl := startCluster(b)
	pods := cl.Client.Pods("default")
	// Pull the image once.
	cl.create(cl.pod("warmup", sleeper()))
	cl.wait("warmup", "to run", running)
	cl.delete("warmup")

	w, err := pods.Watch(cl.Ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	runningAt := map[string]time.Time{}
	// mu guards runningAt, which the watch goroutine fills.
	var mu sync.Mutex
	seen := make(chan string, 1024)
	go func() {
		for ev := range w.ResultChan() {
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || p.Status.Phase != corev1.PodRunning {
				continue
			}
			mu.Lock()
			if _, ok := runningAt[p.Name]; !ok {
				runningAt[p.Name] = time.Now()
				seen <- p.Name
			}
			mu.Unlock()
		}
	}()
	waitRunning := func(names map[string]bool) {
		deadline := time.After(2 * time.Minute)
		for len(names) > 0 {
			select {
			case n := <-seen:
				delete(names, n)
			case <-deadline:
				b.Fatalf("%d pods did not run within 2 minutes", len(names))
			}
		}
	}

	for b.Loop() {
		rssIdle := rssMB(b, cl.node.Pid())

		// 50 pods, one after another.
		var lat []time.Duration
		for i := range 50 {
			name := fmt.Sprintf("seq-%d", i)
			start := time.Now()
			cl.create(cl.pod(name, sleeper()))
			waitRunning(map[string]bool{name: true})
			mu.Lock()
			lat = append(lat, runningAt[name].Sub(start))
			mu.Unlock()
		}
		slices.Sort(lat)
		b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
		b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
		cl.deleteAll()

		// 100 pods at once.
		cpu0 := cpuTicks()
		self0, kub0 := procTicks(os.Getpid()), procTicks(cl.node.Pid())
		names := map[string]bool{}
		start := time.Now()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for i := range 100 {
			name := "burst-" + strconv.Itoa(i)
			names[name] = true
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if _, err := pods.Create(cl.Ctx, cl.pod(name, sleeper())); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		waitRunning(names)
		b.ReportMetric(time.Since(start).Seconds(), "100-pods-s")
		if os.Getenv("TIMING") != "" {
			fmt.Printf("CPU ticks: machine %d, test process %d, kubelet %d\n", cpuTicks()-cpu0, procTicks(os.Getpid())-self0, procTicks(cl.node.Pid())-kub0)
		}
		b.ReportMetric(rssIdle, "rss-idle-MB")
		b.ReportMetric(rssMB(b, cl.node.Pid()), "rss-100-pods-MB")
		cl.deleteAll()
	}
	if os.Getenv("TIMING") != "" {
		os.WriteFile("/tmp/kubelet-timing.log", []byte(cl.node.Output()), 0o644)
	}
}

func sleeper() corev1.Container {
	return corev1.Container{Name: "c", Command: sh("sleep 3600")}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// deleteAll deletes every pod at once and waits until they are gone.
func (cl *cluster) deleteAll() {
	cl.T.Helper()
	grace := int64(0)
	list, err := cl.Client.Pods("default").List(cl.Ctx, metav1.ListOptions{})
	if err != nil {
		cl.T.Fatal(err)
	}
	for _, p := range list.Items {
		if err := cl.Client.Pods("default").Delete(cl.Ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
			cl.T.Fatal(err)
		}
	}
	cl.Await(2*time.Minute, "every pod to be gone", func() (bool, error) {
		list, err := cl.Client.Pods("default").List(cl.Ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == 0, err
	})
}

// rssMB is a process's resident set size in MB.
func rssMB(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

func cpuTicks() int {
	b, _ := os.ReadFile("/proc/stat")
	f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
	t := 0
	for i, v := range f[1:] {
		if i == 3 || i == 4 {
			continue // idle, iowait
		}
		n, _ := strconv.Atoi(v)
		t += n
	}
	return t
}

func procTicks(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	u, _ := strconv.Atoi(f[11])
	k, _ := strconv.Atoi(f[12])
	return u + k
}

// BenchmarkConfigMapUpdate measures how long a ConfigMap update takes to
// reach a file of a pod's configMap volume: from the update's return to
// the moment a reader in the container sees the new content (the time
// its log line got from the container's log, which the kubelet's shim
// stamps as it reads it). The reader polls every few milliseconds, which
// bounds the resolution. The update wakes the pod's worker through the
// ConfigMap's watch; the node's sync interval (2 s here) is only the
// safety net.
//
//	sudo go test -run '^$' -bench BenchmarkConfigMapUpdate -benchtime 1x ./kubelet/
func BenchmarkConfigMapUpdate(b *testing.B) {
	cl := startCluster(b)
	cl.createConfigMap("bench", map[string]string{"v": "v0"})
	p := cl.pod("watcher", corev1.Container{Name: "c", Command: sh(`last=
while :; do
  read -r v < /cfg/v
  [ "$v" != "$last" ] && echo "$v" && last=$v
  sleep 0.002
done`), VolumeMounts: []corev1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}}})
	p.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "bench"}}}}}
	cl.create(p)
	cl.wait("watcher", "to run", running)

	// Follow the log: each line is "TIMESTAMP vN".
	type seenAt struct {
		v  string
		at time.Time
	}
	seen := make(chan seenAt, 1024)
	pr, pw := io.Pipe()
	go func() {
		err := cl.Client.PodLogs(cl.Ctx, "default", "watcher", &corev1.PodLogOptions{Follow: true, Timestamps: true}, pw)
		pw.CloseWithError(err)
	}()
	go func() {
		s := bufio.NewScanner(pr)
		for s.Scan() {
			ts, v, ok := strings.Cut(s.Text(), " ")
			at, err := time.Parse(time.RFC3339Nano, ts)
			if ok && err == nil {
				seen <- seenAt{v, at}
			}
		}
	}()
	await := func(v string) time.Time {
		deadline := time.After(time.Minute)
		for {
			select {
			case s := <-seen:
				if s.v == v {
					return s.at
				}
			case <-deadline:
				b.Fatalf("the reader did not see %s within a minute", v)
			}
		}
	}
	await("v0")

	n := 0
	for b.Loop() {
		var lat []time.Duration
		for range 50 {
			n++
			v := "v" + strconv.Itoa(n)
			start := time.Now()
			cl.updateConfigMap("bench", map[string]string{"v": v})
			lat = append(lat, await(v).Sub(start))
		}
		slices.Sort(lat)
		b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
		b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	}
	b.ReportMetric(cl.node.Config.SyncInterval.Seconds(), "sync-interval-s")
	cl.delete("watcher")
}
