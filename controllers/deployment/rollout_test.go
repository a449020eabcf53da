package deployment

import (
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func template(image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}},
	}
}

func TestComputeHash(t *testing.T) {
	a, b := template("nginx:1"), template("nginx:1")
	if computeHash(&a, nil) != computeHash(&b, nil) {
		t.Errorf("equal templates hash differently")
	}
	c := template("nginx:2")
	if computeHash(&a, nil) == computeHash(&c, nil) {
		t.Errorf("different images hash the same")
	}
	if computeHash(&a, nil) == computeHash(&a, new(int32(1))) {
		t.Errorf("collisionCount does not change the hash")
	}
	// Stable across runs: the names of existing ReplicaSets depend on it.
	if got, want := computeHash(&a, nil), computeHash(&a, nil); got != want || got == "" {
		t.Errorf("got %q, want %q", got, want)
	}
	withHash := a.DeepCopy()
	withHash.Labels[PodTemplateHashLabel] = "abc"
	if !equalIgnoreHash(withHash, &a) {
		t.Errorf("equalIgnoreHash: got false, want true")
	}
}

func TestResolveFenceposts(t *testing.T) {
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	num := func(n int32) *intstr.IntOrString { v := intstr.FromInt32(n); return &v }
	for _, tc := range []struct {
		surge, unavail *intstr.IntOrString
		replicas       int32
		wantS, wantU   int32
	}{
		{pct("25%"), pct("25%"), 10, 3, 2}, // surge rounds up, unavailable down
		{pct("25%"), pct("25%"), 1, 1, 0},
		{num(0), num(0), 5, 0, 1}, // both zero: one unavailable
		{num(2), pct("50%"), 5, 2, 2},
		{pct("100%"), num(0), 3, 3, 0},
	} {
		s, u, err := resolveFenceposts(tc.surge, tc.unavail, tc.replicas)
		if err != nil || s != tc.wantS || u != tc.wantU {
			t.Errorf("%v/%v of %d: got %d, %d, %v, want %d, %d", tc.surge, tc.unavail, tc.replicas, s, u, err, tc.wantS, tc.wantU)
		}
	}
}

func rollingDeployment(replicas, surge, unavail int32) *appsv1.Deployment {
	s, u := intstr.FromInt32(surge), intstr.FromInt32(unavail)
	return &appsv1.Deployment{Spec: appsv1.DeploymentSpec{
		Replicas: new(replicas),
		Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &s, MaxUnavailable: &u}},
	}}
}

func rs(name string, spec, status, available int32, age int) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(time.Unix(int64(1000-age), 0))},
		Spec:       appsv1.ReplicaSetSpec{Replicas: new(spec)},
		Status:     appsv1.ReplicaSetStatus{Replicas: status, AvailableReplicas: available, ReadyReplicas: available},
	}
}

func TestRollingStep(t *testing.T) {
	d := rollingDeployment(10, 3, 2)
	for _, tc := range []struct {
		name       string
		old, new   *appsv1.ReplicaSet
		wantNew    int32
		wantOld    map[string]int32
		maxScaledD int32
	}{
		{"start: surge by 3", rs("old", 10, 10, 10, 2), rs("new", 0, 0, 0, 1), 3, map[string]int32{"old": 8}, 0},
		{"surge used up", rs("old", 10, 10, 10, 2), rs("new", 3, 3, 0, 1), 3, map[string]int32{"old": 8}, 0},
		// Old pods not gone yet still count against the surge.
		{"old still has pods", rs("old", 8, 10, 10, 2), rs("new", 3, 3, 0, 1), 3, map[string]int32{"old": 8}, 0},
		{"old gone: surge again", rs("old", 8, 8, 8, 2), rs("new", 3, 3, 0, 1), 5, map[string]int32{"old": 8}, 0},
		{"new available: scale old down", rs("old", 8, 8, 8, 2), rs("new", 5, 5, 5, 1), 5, map[string]int32{"old": 3}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all := []*appsv1.ReplicaSet{tc.old, tc.new}
			if got := newRSNewReplicas(d, all, tc.new); got != tc.wantNew {
				t.Errorf("new replicas: got %d, want %d", got, tc.wantNew)
			}
			maxDown := maxScaledDown(d, all, tc.new)
			got := map[string]int32{"old": *tc.old.Spec.Replicas}
			if maxDown > 0 {
				for k, v := range oldScaleDowns(d, []*appsv1.ReplicaSet{tc.old}, tc.new, maxDown) {
					got[k] = v
				}
			}
			if got["old"] != tc.wantOld["old"] {
				t.Errorf("old replicas: got %d, want %d (maxScaledDown %d)", got["old"], tc.wantOld["old"], maxDown)
			}
		})
	}
}

func TestOldScaleDownsUnhealthyFirst(t *testing.T) {
	d := rollingDeployment(10, 0, 2)
	a := rs("a", 5, 5, 5, 3)
	b := rs("b", 5, 5, 1, 2) // 4 unavailable
	n := rs("n", 0, 0, 0, 1)
	all := []*appsv1.ReplicaSet{a, b, n}
	maxDown := maxScaledDown(d, all, n)
	got := oldScaleDowns(d, []*appsv1.ReplicaSet{a, b}, n, maxDown)
	// 2 may go: b's unavailable ones; then available 6 <= 8: nothing more.
	if got["b"] != 3 || len(got) != 1 {
		t.Errorf("got %v, want map[b:3]", got)
	}
}

func TestHistoryToDelete(t *testing.T) {
	var old []*appsv1.ReplicaSet
	for i := 1; i <= 5; i++ {
		r := rs("r"+strconv.Itoa(i), 0, 0, 0, 10-i)
		r.Annotations = map[string]string{RevisionAnnotation: strconv.Itoa(i)}
		old = append(old, r)
	}
	*old[1].Spec.Replicas = 1 // revision 2 still scaled: kept
	got := historyToDelete(old, 2)
	var names []string
	for _, r := range got {
		names = append(names, r.Name)
	}
	if len(names) != 2 || names[0] != "r1" || names[1] != "r3" {
		t.Errorf("got %v, want [r1 r3]", names)
	}
}

func TestProportionalSizes(t *testing.T) {
	d := rollingDeployment(20, 3, 2)
	a := rs("a", 8, 8, 8, 2)
	b := rs("b", 5, 5, 5, 1)
	for _, r := range []*appsv1.ReplicaSet{a, b} {
		r.Annotations = map[string]string{MaxReplicasAnnotation: "13"}
	}
	got := proportionalSizes(d, []*appsv1.ReplicaSet{a, b})
	if got["a"]+got["b"] != 23 || got["a"] <= got["b"] {
		t.Errorf("got %v, want a total of 23 with a larger", got)
	}
}

func TestRolloutStatusTimesOut(t *testing.T) {
	now := time.Unix(10000, 0)
	d := rollingDeployment(2, 1, 0)
	d.Spec.ProgressDeadlineSeconds = new(int32(5))
	d.Generation = 1
	d.Status.Conditions = []appsv1.DeploymentCondition{newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonNewReplicaSetCreated, "", now.Add(-3*time.Second))}
	n := rs("web-1", 2, 2, 0, 1)
	s := rolloutStatus(d, []*appsv1.ReplicaSet{n}, n, now)
	d.Status = s
	// Progress (2 updated replicas) restarted the deadline: 5 s, plus 1.
	if after := recheckAfter(d, &s, now); after != 6*time.Second {
		t.Errorf("recheck after: got %v, want 6s", after)
	}
	s = rolloutStatus(d, []*appsv1.ReplicaSet{n}, n, now.Add(6*time.Second))
	c := getCondition(s, appsv1.DeploymentProgressing)
	if c.Status != corev1.ConditionFalse || c.Reason != ReasonProgressDeadlineExceeded || c.Message != `ReplicaSet "web-1" has timed out progressing.` {
		t.Errorf("got %+v", c)
	}
}
