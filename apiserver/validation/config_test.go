package validation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func TestConfigMap(t *testing.T) {
	big := strings.Repeat("x", MaxConfigSize)
	for _, tc := range []struct {
		name string
		cm   *corev1.ConfigMap
		want []string
	}{
		{"keys", &corev1.ConfigMap{ObjectMeta: newMeta("c"), Data: map[string]string{"app.conf": "a", "KEY_1": "b"}, BinaryData: map[string][]byte{"blob-1": {0}}}, nil},
		{"bad key", &corev1.ConfigMap{ObjectMeta: newMeta("c"), Data: map[string]string{"a/b": "x"}},
			[]string{`data[a/b]: Invalid value: "a/b": a valid config key must consist of alphanumeric characters, '-', '_' or '.'`}},
		{"dot key", &corev1.ConfigMap{ObjectMeta: newMeta("c"), Data: map[string]string{"..": "x"}},
			[]string{`data[..]: Invalid value: "..": must not be '..'`}},
		{"duplicate", &corev1.ConfigMap{ObjectMeta: newMeta("c"), Data: map[string]string{"k": "x"}, BinaryData: map[string][]byte{"k": {1}}},
			[]string{`binaryData[k]: Invalid value: "k": duplicate of key present in data`}},
		{"too big", &corev1.ConfigMap{ObjectMeta: newMeta("c"), Data: map[string]string{"k": big}},
			[]string{`[]: Too long: may not be more than 1048576 bytes`}},
		{"bad name", &corev1.ConfigMap{ObjectMeta: newMeta("Web_Config")},
			[]string{`metadata.name: Invalid value: "Web_Config": a lowercase RFC 1123 subdomain`}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkErrors(t, create(tc.cm), tc.want...) })
	}
}

func TestConfigMapImmutable(t *testing.T) {
	old := &corev1.ConfigMap{ObjectMeta: newMeta("c"), Data: map[string]string{"k": "1"}, Immutable: ptr.To(true)}
	same := old.DeepCopy()
	same.Labels = map[string]string{"l": "v"}
	checkErrors(t, update(same, old))

	changed := old.DeepCopy()
	changed.Data["k"] = "2"
	checkErrors(t, update(changed, old), "data: Forbidden: field is immutable when `immutable` is set")

	mutable := old.DeepCopy()
	mutable.Immutable = ptr.To(false)
	checkErrors(t, update(mutable, old), "immutable: Forbidden: field is immutable when `immutable` is set")

	// A mutable one may become immutable, and change on the way.
	free := old.DeepCopy()
	free.Immutable = nil
	becomes := free.DeepCopy()
	becomes.Immutable, becomes.Data["k"] = ptr.To(true), "3"
	checkErrors(t, update(becomes, free))
}

func TestSecret(t *testing.T) {
	meta := newMeta("s")
	saMeta := newMeta("s")
	saMeta.Annotations = map[string]string{corev1.ServiceAccountNameKey: "default"}
	for _, tc := range []struct {
		name string
		s    *corev1.Secret
		want []string
	}{
		{"opaque", &corev1.Secret{ObjectMeta: meta, Data: map[string][]byte{"password": []byte("x")}}, nil},
		{"custom type", &corev1.Secret{ObjectMeta: meta, Type: "example.com/thing"}, nil},
		{"bad key", &corev1.Secret{ObjectMeta: meta, StringData: map[string]string{"a b": "x"}},
			[]string{`data[a b]: Invalid value: "a b": a valid config key must consist`}},
		{"too big", &corev1.Secret{ObjectMeta: meta, Data: map[string][]byte{"k": make([]byte, MaxConfigSize+1)}},
			[]string{`data: Too long: may not be more than 1048576 bytes`}},
		{"tls", &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": nil, "tls.key": nil}}, nil},
		{"tls without key", &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": nil}},
			[]string{`data[tls.key]: Required value`}},
		{"tls from stringData", &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeTLS, StringData: map[string]string{"tls.crt": "c", "tls.key": "k"}}, nil},
		{"docker json", &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeDockerConfigJson, StringData: map[string]string{".dockerconfigjson": `{"auths":{}}`}}, nil},
		{"docker json missing", &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeDockerConfigJson},
			[]string{`data[.dockerconfigjson]: Required value`}},
		{"docker json broken", &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeDockerConfigJson, StringData: map[string]string{".dockerconfigjson": `{"auths":`}},
			[]string{`data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": unexpected end of JSON input`}},
		// encoding/json would quote the character: the message must not.
		{"docker json with a secret character", &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeDockerConfigJson, StringData: map[string]string{".dockerconfigjson": `{"auths": p4ss}`}},
			[]string{`data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": invalid JSON at byte 11`}},
		{"docker json not an object", &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeDockerConfigJson, StringData: map[string]string{".dockerconfigjson": `"hunter2"`}},
			[]string{`data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": must be a JSON object`}},
		{"dockercfg", &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeDockercfg},
			[]string{`data[.dockercfg]: Required value`}},
		{"basic auth, password only", &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{"password": "p"}}, nil},
		{"basic auth, neither", &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeBasicAuth},
			[]string{`data[username]: Required value`, `data[password]: Required value`}},
		{"ssh", &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeSSHAuth},
			[]string{`data[ssh-privatekey]: Required value`}},
		{"token", &corev1.Secret{ObjectMeta: saMeta, Type: corev1.SecretTypeServiceAccountToken}, nil},
		{"token without account", &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeServiceAccountToken},
			[]string{`metadata.annotations[kubernetes.io/service-account.name]: Required value`}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkErrors(t, create(tc.s), tc.want...) })
	}
}

// stringData is merged into data on every write, over data's own value,
// and is never stored.
func TestSecretStringData(t *testing.T) {
	s := &corev1.Secret{ObjectMeta: newMeta("s"), Data: map[string][]byte{"a": []byte("1"), "b": []byte("2")}, StringData: map[string]string{"b": "two", "c": "3"}}
	checkErrors(t, create(s))
	if s.Type != corev1.SecretTypeOpaque || s.StringData != nil || string(s.Data["a"]) != "1" || string(s.Data["b"]) != "two" || string(s.Data["c"]) != "3" {
		t.Errorf("after defaults: type %q, data %q, stringData %q", s.Type, s.Data, s.StringData)
	}
}

func TestSecretUpdate(t *testing.T) {
	old := &corev1.Secret{ObjectMeta: newMeta("s"), Data: map[string][]byte{"k": []byte("1")}}
	retyped := old.DeepCopy()
	retyped.Type = corev1.SecretTypeBasicAuth
	retyped.StringData = map[string]string{"username": "u"}
	checkErrors(t, update(retyped, old), `type: Invalid value: "kubernetes.io/basic-auth": field is immutable`)

	old.Immutable = ptr.To(true)
	changed := old.DeepCopy()
	changed.StringData = map[string]string{"k": "2"}
	checkErrors(t, update(changed, old), "data: Forbidden: field is immutable when `immutable` is set")
}

func TestServiceAccount(t *testing.T) {
	checkErrors(t, create(&corev1.ServiceAccount{ObjectMeta: newMeta("default")}))
	checkErrors(t, create(&corev1.ServiceAccount{ObjectMeta: newMeta("builder"), ImagePullSecrets: []corev1.LocalObjectReference{{Name: "Bad_Name"}}}),
		`imagePullSecrets[0].name: Invalid value: "Bad_Name"`)
}
