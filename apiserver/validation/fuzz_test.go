package validation

import (
	"testing"

	apiequality "k8s.io/apimachinery/pkg/api/equality"

	"github.com/skiffdev/skiff/apiserver/defaults"
	"github.com/skiffdev/skiff/internal/scheme"
)

// seedManifests start the fuzzer from realistic input: manifests users
// apply, and broken ones. The same manifests are in
// testdata/fuzz/FuzzDecodeAndValidate, so plain "go test" runs them too.
var seedManifests = []struct {
	name     string
	manifest string
	valid    bool // decodes strictly and validates without errors
}{
	{"deployment", `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  strategy:
    rollingUpdate: {maxSurge: 1, maxUnavailable: "50%"}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - {name: http, containerPort: 80}
        env:
        - {name: MODE, value: production}
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits: {cpu: 500m, memory: 128Mi}
        readinessProbe:
          httpGet: {path: /healthz, port: http}
          periodSeconds: 5
        livenessProbe:
          tcpSocket: {port: 80}
          initialDelaySeconds: 10
`, true},
	{"service", `apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http, nodePort: 30080}
  - {name: metrics, port: 9090, protocol: TCP}
`, true},
	{"pod", `apiVersion: v1
kind: Pod
metadata:
  name: fetcher
  namespace: default
spec:
  restartPolicy: OnFailure
  volumes:
  - name: shared
    emptyDir: {sizeLimit: 1Gi}
  initContainers:
  - name: prepare
    image: busybox:1.36
    command: [sh, -c, "echo ready > /shared/state"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  containers:
  - name: fetch
    image: curlimages/curl@sha256:4bfa3e2c0164fb103fb9bfd4dc956facce32b6c5d47cc09fcec883ce9535d5ac
    args: [-sf, http://web.shop/]
    volumeMounts: [{name: shared, mountPath: /shared}]
  - name: report
    image: busybox
    command: [sh, -c, "cat /shared/state; sleep 3600"]
    volumeMounts: [{name: shared, mountPath: /shared, readOnly: true}]
    securityContext: {runAsUser: 1000, runAsGroup: 1000}
  tolerations:
  - {key: dedicated, operator: Equal, value: batch, effect: NoSchedule}
`, true},
	{"namespace", `apiVersion: v1
kind: Namespace
metadata:
  name: shop
`, true},
	{"node", `apiVersion: v1
kind: Node
metadata:
  name: node-a
  labels: {kubernetes.io/hostname: node-a}
spec:
  podCIDR: 10.244.1.0/24
  taints:
  - {key: dedicated, value: batch, effect: NoSchedule}
status:
  capacity: {cpu: "4", memory: 8Gi, pods: "110"}
  addresses:
  - {type: InternalIP, address: 192.168.1.10}
`, true},
	{"unknown field", `apiVersion: v1
kind: Pod
metadata: {name: typo, namespace: default}
spec:
  containers:
  - name: app
    image: nginx
    imagePullPolicyy: Always
`, false},
	{"invalid deployment", `apiVersion: apps/v1
kind: Deployment
metadata: {name: Web, namespace: shop}
spec:
  replicas: -1
  selector: {matchLabels: {app: web}}
  strategy: {type: Recreate, rollingUpdate: {maxSurge: 0, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: other}}
    spec:
      restartPolicy: Never
      containers:
      - {name: web, image: "", ports: [{containerPort: 70000, protocol: HTTP}]}
      - {name: web, image: nginx, resources: {requests: {cpu: "2"}, limits: {cpu: 500m}}}
`, false},
	{"invalid service", `apiVersion: v1
kind: Service
metadata: {name: 1web, namespace: shop}
spec:
  clusterIP: 10.96.0.999
  sessionAffinity: Cookie
  ports:
  - {port: 0, targetPort: not_a_port}
  - {port: 80, nodePort: 30080}
`, false},
	{"invalid volumes", `apiVersion: v1
kind: Pod
metadata: {name: vols, namespace: default}
spec:
  volumes:
  - {name: data, emptyDir: {}, hostPath: {path: /srv}}
  - {name: data, hostPath: {path: ../etc}}
  containers:
  - name: app
    image: nginx
    volumeMounts: [{name: missing, mountPath: relative}]
    livenessProbe: {exec: {command: ["true"]}, httpGet: {port: 0}, successThreshold: 3}
`, false},
	{"unknown kind", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", false},
	{"not yaml", "{{{: :", false},
	{"empty", "", false},
}

// FuzzDecodeAndValidate feeds manifests through the registry's write path
// (strict decoding, defaulting, validation) and requires that nothing
// panics, whatever the input, and that defaulting is idempotent.
func FuzzDecodeAndValidate(f *testing.F) {
	for _, seed := range seedManifests {
		f.Add([]byte(seed.manifest))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A strict decoding error (an unknown field, say) still comes with
		// the decoded object, and the registry may go on with it.
		obj, _ := scheme.DecodeStrictYAML(data, nil)
		if obj == nil {
			return
		}
		defaults.Default(obj)
		again := obj.DeepCopyObject()
		defaults.Default(again)
		if !apiequality.Semantic.DeepEqual(obj, again) {
			t.Errorf("defaulting twice changed the object:\nonce:  %#v\ntwice: %#v", obj, again)
		}
		ValidateObject(obj)
		ValidateObjectUpdate(obj, obj)
		ValidateObjectUpdate(obj, again)
		ValidateStatusUpdate(obj, obj)
		Warnings(obj)
	})
}

// TestSeedManifests keeps the seeds honest: the realistic ones really are
// valid, and the broken ones really are refused.
func TestSeedManifests(t *testing.T) {
	for _, seed := range seedManifests {
		t.Run(seed.name, func(t *testing.T) {
			obj, err := scheme.DecodeStrictYAML([]byte(seed.manifest), nil)
			var errs []string
			if err != nil {
				errs = append(errs, err.Error())
			}
			if obj != nil {
				defaults.Default(obj)
				for _, e := range ValidateObject(obj) {
					errs = append(errs, e.Error())
				}
			}
			if seed.valid && len(errs) > 0 {
				t.Errorf("got errors %q, want none", errs)
			}
			if !seed.valid && len(errs) == 0 {
				t.Errorf("got no errors, want some")
			}
		})
	}
}
