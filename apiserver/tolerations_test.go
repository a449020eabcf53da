package apiserver_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/internal/testenv"
)

// TestDefaultTolerations checks the DefaultTolerationSeconds admission:
// every new pod tolerates not-ready and unreachable nodes for
// --default-toleration-seconds, unless it already tolerates them.
func TestDefaultTolerations(t *testing.T) {
	srv := testenv.StartServer(t, func(cfg *apiserver.Config) { cfg.DefaultTolerationSeconds = 42 })
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)

	seconds := func(s int64) *int64 { return &s }
	notReady := corev1.Toleration{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds(42)}
	unreachable := corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds(42)}
	own := corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds(7)}
	dedicated := corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule}

	tests := []struct {
		name string
		have []corev1.Toleration
		want []corev1.Toleration
	}{
		{"none", nil, []corev1.Toleration{notReady, unreachable}},
		{"unrelated kept", []corev1.Toleration{dedicated}, []corev1.Toleration{dedicated, notReady, unreachable}},
		{"own unreachable kept", []corev1.Toleration{own}, []corev1.Toleration{own, notReady}},
		{
			"any effect of the key",
			[]corev1.Toleration{{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists}},
			[]corev1.Toleration{{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists}, unreachable},
		},
		{
			"tolerates everything",
			[]corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			[]corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		},
		{
			"NoSchedule only does not count",
			[]corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
			[]corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}, notReady, unreachable},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := newPod("tolerations-"+string(rune('a'+i)), nil)
			pod.Spec.Tolerations = tt.have
			got, err := c.Pods("default").Create(ctx, pod)
			if err != nil {
				t.Fatal(err)
			}
			if !equality.Semantic.DeepEqual(got.Spec.Tolerations, tt.want) {
				t.Errorf("got tolerations %+v, want %+v", got.Spec.Tolerations, tt.want)
			}
		})
	}

	t.Run("not on update", func(t *testing.T) {
		got, err := c.Pods("default").Create(ctx, newPod("tolerations-update", nil))
		if err != nil {
			t.Fatal(err)
		}
		// Tolerations may only be added on update, so an update that
		// keeps them must keep them unchanged and add nothing.
		got.Labels = map[string]string{"touched": "yes"}
		upd, err := c.Pods("default").Update(ctx, got)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(upd.Spec.Tolerations); n != 2 {
			t.Errorf("got %d tolerations after update, want 2", n)
		}
	})
}

func TestDefaultTolerationSecondsFlag(t *testing.T) {
	cfg := apiserver.DefaultConfig()
	if cfg.DefaultTolerationSeconds != 300 {
		t.Errorf("got default %d, want 300", cfg.DefaultTolerationSeconds)
	}
	cfg.DefaultTolerationSeconds = -1
	if err := cfg.Validate(); err == nil {
		t.Error("got no error for --default-toleration-seconds -1, want one")
	}
}
