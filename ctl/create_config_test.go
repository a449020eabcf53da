package ctl

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/skiffdev/skiff/internal/testenv"
)

// selfSignedPEM makes a certificate and its key, in PEM.
func selfSignedPEM(t *testing.T) (cert, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "web.example.com"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// TestCreateConfigMapAndSecret makes config maps and secrets of every
// kind from the command line against a real server, and checks what is
// stored, what is printed, and kubectl's messages for what is wrong.
func TestCreateConfigMapAndSecret(t *testing.T) {
	srv := testenv.StartServer(t)
	kubeconfig := ctlKubeconfig(t, srv)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	dir := t.TempDir()

	run := func(t *testing.T, args ...string) string {
		t.Helper()
		out, errOut, err := ctlRun(t, kubeconfig, "", args...)
		if err != nil {
			t.Fatalf("%v: %v (stderr %q)", args, FormatError(err), errOut)
		}
		return out
	}

	t.Run("configmap", func(t *testing.T) {
		conf := ctlFile(t, dir, "conf/nginx.conf", "server { listen 80; }\n")
		ctlFile(t, dir, "conf/mime.types", "text/html html\n")
		ctlFile(t, dir, "conf/sub/ignored", "a subdirectory is not read\n")
		logo := ctlFile(t, dir, "logo.png", "\x89PNG\r\n\x1a\n\xff\xfe")
		out := run(t, "create", "configmap", "web-config",
			"--from-literal=LOG_LEVEL=debug", "--from-literal=EQUATION=a=b",
			"--from-file="+filepath.Join(dir, "conf"), "--from-file=main.conf="+conf, "--from-file="+logo)
		if out != "configmap/web-config created\n" {
			t.Errorf("printed %q", out)
		}
		cm, err := c.ConfigMaps("default").Get(ctx, "web-config")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"LOG_LEVEL": "debug", "EQUATION": "a=b", "nginx.conf": "server { listen 80; }\n",
			"mime.types": "text/html html\n", "main.conf": "server { listen 80; }\n"}
		if !equality.Semantic.DeepEqual(cm.Data, want) {
			t.Errorf("data %v, want %v", cm.Data, want)
		}
		if got := string(cm.BinaryData["logo.png"]); got != "\x89PNG\r\n\x1a\n\xff\xfe" || len(cm.BinaryData) != 1 {
			t.Errorf("binaryData %q, want logo.png as it is on disk", cm.BinaryData)
		}

		// An env file: comments, blank lines, leading space, a byte order
		// mark, a value with "=" and quotes kept, a key from the
		// environment.
		t.Setenv("FROM_ENV", "inherited")
		env := ctlFile(t, dir, "web.env", "\ufeffMODE=production\n# a comment\n\n   PORT=8080\nQUOTED=\"x=y\" \nFROM_ENV\n")
		run(t, "create", "cm", "web-env", "--from-env-file="+env)
		cm, err = c.ConfigMaps("default").Get(ctx, "web-env")
		if err != nil {
			t.Fatal(err)
		}
		want = map[string]string{"MODE": "production", "PORT": "8080", "QUOTED": `"x=y" `, "FROM_ENV": "inherited"}
		if !equality.Semantic.DeepEqual(cm.Data, want) {
			t.Errorf("from an env file: data %q, want %q", cm.Data, want)
		}

		// In another namespace, printed by name.
		ctlNamespace(t, c, "shop")
		if out := run(t, "create", "configmap", "cart", "-n", "shop", "--from-literal=a=1", "-o", "name"); out != "configmap/cart\n" {
			t.Errorf("-o name printed %q", out)
		}
		if _, err := c.ConfigMaps("shop").Get(ctx, "cart"); err != nil {
			t.Errorf("configmap in -n shop: %v", err)
		}
	})

	t.Run("dry run", func(t *testing.T) {
		out := run(t, "create", "configmap", "preview", "--from-literal=b=2", "--from-literal=a=1", "--dry-run=client", "-o", "yaml")
		want := "apiVersion: v1\ndata:\n  a: \"1\"\n  b: \"2\"\nkind: ConfigMap\nmetadata:\n  name: preview\n"
		if out != want {
			t.Errorf("--dry-run=client -o yaml printed\n%s\nwant\n%s", out, want)
		}
		out = run(t, "create", "secret", "generic", "preview", "-n", "shop", "--from-literal=password=hunter22", "--dry-run=client", "-o", "yaml")
		want = "apiVersion: v1\ndata:\n  password: aHVudGVyMjI=\nkind: Secret\nmetadata:\n  name: preview\n  namespace: shop\n"
		if out != want {
			t.Errorf("secret --dry-run=client -o yaml printed\n%s\nwant\n%s", out, want)
		}
		if out := run(t, "create", "configmap", "preview", "--from-literal=a=1", "--dry-run=server"); out != "configmap/preview created (server dry run)\n" {
			t.Errorf("--dry-run=server printed %q", out)
		}
		if out := run(t, "create", "secret", "generic", "preview", "--from-literal=a=1", "--dry-run"); out != "secret/preview created (dry run)\n" {
			t.Errorf("--dry-run printed %q", out)
		}
		if _, err := c.ConfigMaps("default").Get(ctx, "preview"); !apierrors.IsNotFound(err) {
			t.Errorf("a dry run stored the configmap: %v", err)
		}
		if _, err := c.Secrets("default").Get(ctx, "preview"); !apierrors.IsNotFound(err) {
			t.Errorf("a dry run stored the secret: %v", err)
		}
	})

	t.Run("secret generic", func(t *testing.T) {
		key := ctlFile(t, dir, "id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\n")
		out := run(t, "create", "secret", "generic", "db", "--from-literal=username=app", "--from-literal=password=S3cr3t!", "--from-file=ssh-privatekey="+key)
		if out != "secret/db created\n" {
			t.Errorf("printed %q", out)
		}
		s, err := c.Secrets("default").Get(ctx, "db")
		if err != nil {
			t.Fatal(err)
		}
		if s.Type != corev1.SecretTypeOpaque || string(s.Data["password"]) != "S3cr3t!" || string(s.Data["username"]) != "app" ||
			string(s.Data["ssh-privatekey"]) != "-----BEGIN OPENSSH PRIVATE KEY-----\n" {
			t.Errorf("stored %s %q", s.Type, s.Data)
		}
		run(t, "create", "secret", "generic", "auth", "--type=kubernetes.io/basic-auth", "--from-literal=username=admin", "--from-literal=password=x")
		if s, err := c.Secrets("default").Get(ctx, "auth"); err != nil || s.Type != corev1.SecretTypeBasicAuth {
			t.Errorf("--type: %v, %v", s, err)
		}
	})

	t.Run("secret tls", func(t *testing.T) {
		cert, key := selfSignedPEM(t)
		certPath, keyPath := ctlFile(t, dir, "tls.crt", string(cert)), ctlFile(t, dir, "tls.key", string(key))
		if out := run(t, "create", "secret", "tls", "web-tls", "--cert="+certPath, "--key="+keyPath); out != "secret/web-tls created\n" {
			t.Errorf("printed %q", out)
		}
		s, err := c.Secrets("default").Get(ctx, "web-tls")
		if err != nil {
			t.Fatal(err)
		}
		if s.Type != corev1.SecretTypeTLS || string(s.Data["tls.crt"]) != string(cert) || string(s.Data["tls.key"]) != string(key) {
			t.Errorf("stored %s with keys %v", s.Type, s.Data)
		}
	})

	t.Run("secret docker-registry", func(t *testing.T) {
		run(t, "create", "secret", "docker-registry", "regcred", "--docker-server=registry.example.com",
			"--docker-username=ci", "--docker-password=t0ken", "--docker-email=ci@example.com")
		s, err := c.Secrets("default").Get(ctx, "regcred")
		if err != nil {
			t.Fatal(err)
		}
		var cfg map[string]map[string]map[string]string
		if err := json.Unmarshal(s.Data[".dockerconfigjson"], &cfg); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"username": "ci", "password": "t0ken", "email": "ci@example.com", "auth": "Y2k6dDBrZW4="}
		if s.Type != corev1.SecretTypeDockerConfigJson || !equality.Semantic.DeepEqual(cfg["auths"]["registry.example.com"], want) {
			t.Errorf("stored %s %s", s.Type, s.Data[".dockerconfigjson"])
		}
		config := ctlFile(t, dir, "config.json", `{"auths":{"ghcr.io":{"auth":"eDp5"}}}`)
		run(t, "create", "secret", "docker-registry", "from-file", "--from-file="+config)
		if s, err := c.Secrets("default").Get(ctx, "from-file"); err != nil || string(s.Data[".dockerconfigjson"]) != `{"auths":{"ghcr.io":{"auth":"eDp5"}}}` {
			t.Errorf("--from-file: %v, %v", s, err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		cert, key := selfSignedPEM(t)
		otherCert, _ := selfSignedPEM(t)
		certPath, keyPath := ctlFile(t, dir, "e/tls.crt", string(cert)), ctlFile(t, dir, "e/tls.key", string(key))
		otherPath := ctlFile(t, dir, "e/other.crt", string(otherCert))
		envDir := filepath.Join(dir, "conf")
		badEnv := ctlFile(t, dir, "e/bad.env", "GOOD=1\n1BAD=2\n")
		missing := filepath.Join(dir, "missing")
		cases := []struct {
			args []string
			want string
		}{
			{[]string{"create", "configmap"}, "error: exactly one NAME is required, got 0\nSee 'skiffctl create configmap -h' for help and examples"},
			{[]string{"create", "secret", "generic", "a", "b"}, "error: exactly one NAME is required, got 2\nSee 'skiffctl create secret generic -h' for help and examples"},
			{[]string{"create", "configmap", "x", "--from-env-file=" + badEnv, "--from-literal=a=b"}, "error: from-env-file cannot be combined with from-file or from-literal"},
			{[]string{"create", "configmap", "x", "--from-literal=novalue"}, "error: invalid literal source novalue, expected key=value"},
			{[]string{"create", "configmap", "x", "--from-literal==v"}, "error: invalid literal source =v, expected key=value"},
			{[]string{"create", "configmap", "x", "--from-literal=a b=c"}, `error: "a b" is not a valid key name for a ConfigMap: a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`},
			{[]string{"create", "configmap", "x", "--from-literal=a=1", "--from-literal=a=2"}, `error: cannot add key "a", another key by that name already exists in Data for ConfigMap "x"`},
			{[]string{"create", "secret", "generic", "x", "--from-literal=a=1", "--from-literal=a=2"}, "error: cannot add key a, another key by that name already exists"},
			{[]string{"create", "secret", "generic", "x", "--from-literal=a b=1"}, `error: "a b" is not valid key name for a Secret a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`},
			{[]string{"create", "configmap", "x", "--from-file=" + missing}, "error: error reading " + missing + ": no such file or directory"},
			{[]string{"create", "configmap", "x", "--from-file=k=" + envDir}, "error: cannot give a key name for a directory path"},
			{[]string{"create", "configmap", "x", "--from-file==" + certPath}, "error: key name for file path " + certPath + " missing"},
			{[]string{"create", "configmap", "x", "--from-file=k="}, "error: file path for key name k missing"},
			{[]string{"create", "configmap", "x", "--from-file=a=b=c"}, "error: key names or file paths cannot contain '='"},
			{[]string{"create", "configmap", "x", "--from-env-file=" + badEnv}, `error: "1BAD" is not a valid key name: a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')`},
			{[]string{"create", "configmap", "x", "--from-env-file=" + envDir}, "error: env config file cannot be a directory"},
			{[]string{"create", "secret", "generic", "x", "--from-env-file=" + envDir}, "error: env secret file cannot be a directory"},
			{[]string{"create", "secret", "tls", "x", "--cert=" + certPath}, "error: key and cert must be specified"},
			{[]string{"create", "secret", "tls", "x", "--cert=" + missing, "--key=" + keyPath}, "error: Cannot read file " + missing + ", open " + missing + ": no such file or directory"},
			{[]string{"create", "secret", "tls", "x", "--cert=" + otherPath, "--key=" + keyPath}, "error: tls: private key does not match public key"},
			{[]string{"create", "secret", "docker-registry", "x", "--docker-username=u"}, "error: either --from-file or the combination of --docker-username, --docker-password and --docker-server is required"},
			{[]string{"create", "configmap", "x", "--from-literal=a=1", "-o", "wide"}, `error: unable to match a printer suitable for the output format "wide", allowed formats are: json,name,yaml`},
			{[]string{"create", "configmap", "x", "--from-literal=a=1", "--dry-run=maybe"}, `error: invalid dry-run value (maybe). Must be "none", "server", or "client"`},
			{[]string{"create", "configmap", "web-config", "--from-literal=a=1"}, `error: failed to create configmap: configmaps "web-config" already exists`},
			{[]string{"create", "secret", "generic", "db", "--from-literal=a=1"}, `error: failed to create secret: secrets "db" already exists`},
			{[]string{"create", "secret", "generic", "bad-tls", "--type=kubernetes.io/tls", "--from-literal=tls.crt=x"}, `error: failed to create secret: Secret "bad-tls" is invalid: data[tls.key]: Required value`},
		}
		for _, tc := range cases {
			_, _, err := ctlRun(t, kubeconfig, "", tc.args...)
			if got := FormatError(err); got != tc.want {
				t.Errorf("%v:\n got %s\nwant %s", tc.args, got, tc.want)
			}
		}
	})
}

// TestGetAndDescribeConfig lists and describes config maps, secrets and
// service accounts as kubectl shows them; a secret's values never appear.
func TestGetAndDescribeConfig(t *testing.T) {
	srv := testenv.StartServer(t)
	kubeconfig := ctlKubeconfig(t, srv)
	getFixClock(t)
	for _, args := range [][]string{
		{"create", "configmap", "web-config", "--from-literal=LOG_LEVEL=debug", "--from-literal=nginx.conf=server {\n  listen 80;\n}"},
		{"create", "secret", "generic", "db", "--from-literal=username=app", "--from-literal=password=hunter22"},
		{"create", "secret", "docker-registry", "regcred", "--docker-server=r.example.com", "--docker-username=u", "--docker-password=p"},
	} {
		if _, errOut, err := ctlRun(t, kubeconfig, "", args...); err != nil {
			t.Fatalf("%v: %v (%s)", args, err, errOut)
		}
	}
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	sa := &corev1.ServiceAccount{}
	sa.Name, sa.Namespace = "builder", "default"
	sa.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
	sa.Secrets = []corev1.ObjectReference{{Name: "db"}, {Name: "other"}}
	if _, err := c.ServiceAccounts("default").Create(ctx, sa); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) string {
		t.Helper()
		out, errOut, err := ctlRun(t, kubeconfig, "", args...)
		if err != nil {
			t.Fatalf("%v: %v (stderr %q)", args, err, errOut)
		}
		return out
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "configmaps"}, "NAME         DATA   AGE\nweb-config   2      30d\n"},
		{[]string{"get", "secrets"}, "NAME      TYPE                             DATA   AGE\ndb        Opaque                           2      30d\nregcred   kubernetes.io/dockerconfigjson   1      30d\n"},
		{[]string{"get", "sa"}, "NAME      SECRETS   AGE\nbuilder   2         30d\n"},
		{[]string{"describe", "secret", "db"}, `Name:         db
Namespace:    default
Labels:       <none>
Annotations:  <none>

Type:  Opaque

Data
====
password:  8 bytes
username:  3 bytes
`},
		{[]string{"describe", "configmap", "web-config"}, `Name:         web-config
Namespace:    default
Labels:       <none>
Annotations:  <none>

Data
====
LOG_LEVEL:
----
debug

nginx.conf:
----
server {
  listen 80;
}


BinaryData
====

Events:  <none>
`},
		{[]string{"describe", "sa", "builder"}, `Name:                builder
Namespace:           default
Labels:              <none>
Annotations:         <none>
Image pull secrets:  regcred
Mountable secrets:   db
                     other
Tokens:              <none>
Events:              <none>
`},
	} {
		if got := run(tc.args...); got != tc.want {
			t.Errorf("%v printed\n%s\nwant\n%s", tc.args, got, tc.want)
		}
	}
	for _, args := range [][]string{{"describe", "secrets"}, {"describe", "secret", "db"}, {"describe", "secret", "regcred"}} {
		out := run(args...)
		for _, secret := range []string{"hunter22", "aHVudGVyMjI", `"p"`, "dTpw"} {
			if strings.Contains(out, secret) {
				t.Errorf("%v shows a secret value %q:\n%s", args, secret, out)
			}
		}
	}
}
