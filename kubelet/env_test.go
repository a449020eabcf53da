package kubelet

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/kubelet/images"
)

func TestContainerEnv(t *testing.T) {
	ref := func(n string) corev1.LocalObjectReference { return corev1.LocalObjectReference{Name: n} }
	cmKey := func(name, key string, optional bool) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: ref(name), Key: key, Optional: ptr.To(optional)}}
	}
	secretKey := func(name, key string, optional bool) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: ref(name), Key: key, Optional: ptr.To(optional)}}
	}
	field := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	weird := &corev1.ConfigMap{ObjectMeta: settings.ObjectMeta, Data: map[string]string{"ok": "1", "has=equals": "2", "1digit": "3"}}
	for _, tc := range []struct {
		name        string
		envFrom     []corev1.EnvFromSource
		env         []corev1.EnvVar
		objs        *podObjects
		want        string
		wantErr     string
		wantSkipped string
	}{
		{name: "envFrom both kinds with a prefix, then env overriding",
			envFrom: []corev1.EnvFromSource{
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: ref("settings")}},
				{Prefix: "DB_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: ref("creds")}},
			},
			env:  []corev1.EnvVar{{Name: "mode", Value: "slow $(level)"}},
			want: "level=3 mode=fast DB_password=s3cret DB_user=admin mode=slow $(level)*"},
		{name: "keyRefs",
			env:  []corev1.EnvVar{{Name: "M", ValueFrom: cmKey("settings", "mode", false)}, {Name: "P", ValueFrom: secretKey("creds", "password", false)}},
			want: "M=fast P=s3cret"},
		{name: "every fieldRef",
			env: []corev1.EnvVar{
				{Name: "NAME", ValueFrom: field("metadata.name")}, {Name: "NS", ValueFrom: field("metadata.namespace")},
				{Name: "UID", ValueFrom: field("metadata.uid")}, {Name: "APP", ValueFrom: field("metadata.labels['app']")},
				{Name: "NOTE", ValueFrom: field("metadata.annotations['note']")}, {Name: "NODE", ValueFrom: field("spec.nodeName")},
				{Name: "SA", ValueFrom: field("spec.serviceAccountName")}, {Name: "HOST", ValueFrom: field("status.hostIP")},
				{Name: "HOSTS", ValueFrom: field("status.hostIPs")}, {Name: "IP", ValueFrom: field("status.podIP")},
				{Name: "IPS", ValueFrom: field("status.podIPs")},
			},
			want: `NAME=web NS=ns UID=uid-1 APP=web NOTE=say "hi" NODE=node-1 SA=robot HOST=192.0.2.1 HOSTS=192.0.2.1 IP=10.244.0.7 IPS=10.244.0.7`},
		{name: "resourceFieldRef: a limit, an unset limit (the node's allocatable), an unset request",
			env: []corev1.EnvVar{
				{Name: "CPU", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu", Divisor: resource.MustParse("1m")}}},
				{Name: "NODE_MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi"), ContainerName: "other"}}},
				{Name: "REQ", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "requests.memory"}}},
			},
			want: "CPU=250 NODE_MEM=1024 REQ=0"},
		{name: "missing configmap", env: []corev1.EnvVar{{Name: "M", ValueFrom: cmKey("nope", "mode", false)}},
			wantErr: `configmap "nope" not found`},
		{name: "missing secret", env: []corev1.EnvVar{{Name: "M", ValueFrom: secretKey("nope", "mode", false)}},
			wantErr: `secret "nope" not found`},
		{name: "missing configmap key", env: []corev1.EnvVar{{Name: "M", ValueFrom: cmKey("settings", "speed", false)}},
			wantErr: `couldn't find key speed in ConfigMap ns/settings`},
		{name: "missing secret key", env: []corev1.EnvVar{{Name: "M", ValueFrom: secretKey("creds", "token", false)}},
			wantErr: `couldn't find key token in Secret ns/creds`},
		{name: "optional: left out",
			env:  []corev1.EnvVar{{Name: "A", ValueFrom: cmKey("nope", "x", true)}, {Name: "B", ValueFrom: secretKey("creds", "token", true)}, {Name: "C", Value: "c"}},
			want: "C=c*"},
		{name: "envFrom missing", envFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: ref("nope")}}},
			wantErr: `secret "nope" not found`},
		{name: "envFrom missing, optional", envFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: ref("nope"), Optional: ptr.To(true)}}},
			want: ""},
		{name: "envFrom keys that are no variable names are skipped",
			envFrom:     []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: ref("settings")}}},
			objs:        testObjects(weird),
			want:        "1digit=3 ok=1",
			wantSkipped: "Keys [has=equals] from the EnvFrom configMap ns/settings were skipped since they are considered invalid environment variable names."},
		{name: "an error other than not found is not optional",
			env:     []corev1.EnvVar{{Name: "A", ValueFrom: cmKey("settings", "x", true)}},
			objs:    &podObjects{errs: map[objectRef]error{{kindConfigMap, "ns", "settings"}: errors.New("could not read configmap ns/settings from the API server yet")}},
			wantErr: "could not read configmap ns/settings from the API server yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testPod()
			pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "other"})
			c := &pod.Spec.Containers[0]
			c.EnvFrom, c.Env = tc.envFrom, tc.env
			objs := tc.objs
			if objs == nil {
				objs = testObjects(settings, creds)
			}
			alloc := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("1Gi")}
			vars, skipped, err := containerEnv(pod, c, podFacts{objs: objs, podIP: "10.244.0.7", hostIP: "192.0.2.1", allocatable: alloc})
			if tc.wantErr != "" {
				var ce *configError
				if err == nil || err.Error() != tc.wantErr || !errors.As(err, &ce) {
					t.Fatalf("got error %v, want the configError %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range vars {
				s := v.name + "=" + v.value
				if v.expand {
					s += "*"
				}
				got = append(got, s)
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("got  %s\nwant %s", strings.Join(got, " "), tc.want)
			}
			if fmt.Sprint(strings.Join(skipped, "|")) != tc.wantSkipped {
				t.Errorf("skipped: got %q, want %q", skipped, tc.wantSkipped)
			}
		})
	}
}

func TestEnvironmentOrderAndExpansion(t *testing.T) {
	pod := testPod()
	// $(NAME) sees the container's own variables only, as in Kubernetes:
	// not the image's PATH, nor HOSTNAME (the runtime's).
	own := []envVar{{name: "level", value: "3"}, {name: "MSG", value: "at $(level) on $(HOSTNAME) in $(PATH), $$(level)", expand: true}, {name: "RAW", value: "$(level)"}}
	env, vars := environment(pod, &pod.Spec.Containers[0], images.ImageConfig{Env: []string{"PATH=/bin", "level=0"}}, own)
	want := "PATH=/bin level=3 HOSTNAME=web MSG=at 3 on $(HOSTNAME) in $(PATH), $(level) RAW=$(level)"
	if got := strings.Join(env, " "); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// Command and args expand against the same variables.
	if _, ok := vars["PATH"]; ok || vars["level"] != "3" || len(vars) != 3 {
		t.Errorf("variables for command and args: %v, want level, MSG and RAW only", vars)
	}
}
