package kubelet

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

// testObjects is a podObjects holding objs; every other object is
// missing.
func testObjects(objs ...runtime.Object) *podObjects {
	o := &podObjects{objects: map[objectRef]runtime.Object{}, errs: map[objectRef]error{}}
	for _, obj := range objs {
		switch v := obj.(type) {
		case *corev1.ConfigMap:
			o.objects[objectRef{kindConfigMap, v.Namespace, v.Name}] = v
		case *corev1.Secret:
			o.objects[objectRef{kindSecret, v.Namespace, v.Name}] = v
		}
	}
	return o
}

func testPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "uid-1",
			Labels: map[string]string{"app": "web", "tier": "front"}, Annotations: map[string]string{"note": `say "hi"`}},
		Spec: corev1.PodSpec{NodeName: "node-1", ServiceAccountName: "robot", Containers: []corev1.Container{{
			Name:      "app",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi"), corev1.ResourceCPU: resource.MustParse("250m")}},
		}}},
		Status: corev1.PodStatus{PodIP: "10.244.0.7"},
	}
}

var (
	settings = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "ns"},
		Data: map[string]string{"mode": "fast", "level": "3"}, BinaryData: map[string][]byte{"blob": {0, 1, 2}}}
	creds = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "ns"},
		Data: map[string][]byte{"user": []byte("admin"), "password": []byte("s3cret")}}
)

// files prints a volume's files as "path=content mode", sorted.
func files(m map[string]volumeFile) string {
	var out []string
	for _, p := range slices.Sorted(maps.Keys(m)) {
		out = append(out, fmt.Sprintf("%s=%s %o", p, m[p].data, m[p].mode))
	}
	return strings.Join(out, " ")
}

func TestVolumeFiles(t *testing.T) {
	mode := func(m int32) *int32 { return &m }
	ref := func(n string) corev1.LocalObjectReference { return corev1.LocalObjectReference{Name: n} }
	objs := testObjects(settings, creds)
	for _, tc := range []struct {
		name    string
		src     corev1.VolumeSource
		want    string
		wantErr string
	}{
		{name: "configMap: every key, data and binaryData, 0644",
			src:  corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("settings")}},
			want: "blob=\x00\x01\x02 644 level=3 644 mode=fast 644"},
		{name: "configMap: items with paths and modes, defaultMode",
			src: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("settings"), DefaultMode: mode(0o600),
				Items: []corev1.KeyToPath{{Key: "mode", Path: "conf/mode"}, {Key: "level", Path: "level.txt", Mode: mode(0o444)}}}},
			want: "conf/mode=fast 600 level.txt=3 444"},
		{name: "configMap: missing",
			src:     corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("nope")}},
			wantErr: `MountVolume.SetUp failed for volume "v" : configmap "nope" not found`},
		{name: "configMap: missing but optional",
			src: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("nope"), Optional: ptr.To(true)}}},
		{name: "configMap: missing key",
			src:     corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("settings"), Items: []corev1.KeyToPath{{Key: "speed", Path: "s"}}}},
			wantErr: `MountVolume.SetUp failed for volume "v" : configmap references non-existent config key: speed`},
		{name: "configMap: missing key, optional",
			src:  corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("settings"), Optional: ptr.To(true), Items: []corev1.KeyToPath{{Key: "speed", Path: "s"}, {Key: "mode", Path: "m"}}}},
			want: "m=fast 644"},
		{name: "secret: every key",
			src:  corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", DefaultMode: mode(0o400)}},
			want: "password=s3cret 400 user=admin 400"},
		{name: "secret: missing",
			src:     corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "nope"}},
			wantErr: `MountVolume.SetUp failed for volume "v" : secret "nope" not found`},
		{name: "secret: missing key",
			src:     corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", Items: []corev1.KeyToPath{{Key: "token", Path: "t"}}}},
			wantErr: `MountVolume.SetUp failed for volume "v" : secret references non-existent secret key: token`},
		{name: "downwardAPI: fields, all labels and annotations, a resource",
			src: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
				{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
				{Path: "annotations", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations"}, Mode: mode(0o400)},
				{Path: "app", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}},
				{Path: "mem", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}},
			}}},
			want: `annotations=note="say \"hi\"" 400 app=web 644 labels=app="web"` + "\n" + `tier="front" 644 mem=64 644 name=web 644`},
		{name: "projected: a mix, with the projected defaultMode",
			src: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{DefaultMode: mode(0o440), Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: ref("settings"), Items: []corev1.KeyToPath{{Key: "mode", Path: "mode"}}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: ref("creds"), Items: []corev1.KeyToPath{{Key: "user", Path: "creds/user", Mode: mode(0o400)}}}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "ns", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
			}}},
			want: "creds/user=admin 400 mode=fast 440 ns=ns 440"},
		{name: "projected: a missing secret",
			src: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: ref("settings")}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: ref("nope")}},
			}}},
			wantErr: `MountVolume.SetUp failed for volume "v" : secret "nope" not found`},
		{name: "projected: serviceAccountToken is refused",
			src: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
			}}},
			wantErr: `volume "v": projected source 0: serviceAccountToken is not supported by Skiff yet`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &corev1.Volume{Name: "v", VolumeSource: tc.src}
			got, err := volumeFiles(testPod(), v, podFacts{objs: objs, podIP: "10.244.0.7", hostIP: "192.0.2.1"})
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("got error %v, want %q", err, tc.wantErr)
				}
				if _, ok := err.(*configError); !ok {
					t.Errorf("error %T is not a configError (CreateContainerConfigError)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if files(got) != tc.want {
				t.Errorf("got  %q\nwant %q", files(got), tc.want)
			}
		})
	}
	// A missing object's error says so to the caller, which then waits
	// for the object's arrival rather than retrying.
	_, err := volumeFiles(testPod(), &corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "nope"}}}, podFacts{objs: objs})
	if !apierrors.IsNotFound(err) {
		t.Errorf("missing secret: got %v, want an error that IsNotFound", err)
	}
}
