package kubelet

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/skiffdev/skiff/kubelet/images"
	"github.com/skiffdev/skiff/kubelet/runtime"
)

// configError is a container whose spec cannot be turned into a process:
// Kubernetes reports it as CreateContainerConfigError, and retries.
type configError struct {
	msg   string
	cause error // what the message reports, when it wraps one
}

func (e *configError) Error() string { return e.msg }
func (e *configError) Unwrap() error { return e.cause }

func configErrorf(format string, args ...any) error {
	return &configError{msg: fmt.Sprintf(format, args...)}
}

// containerHash identifies a container's spec; a pod update that changes
// it (a new image) restarts the container.
func containerHash(c *corev1.Container) string {
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// processArgs combines the container's command and args with the image's
// entrypoint and cmd as Kubernetes does: command replaces the entrypoint
// (and drops the image's cmd); args replace the cmd.
func processArgs(c *corev1.Container, img images.ImageConfig, env map[string]string) ([]string, error) {
	var argv []string
	switch {
	case len(c.Command) > 0:
		argv = append(expandAll(c.Command, env), expandAll(c.Args, env)...)
	case len(c.Args) > 0:
		argv = append(slices.Clone(img.Entrypoint), expandAll(c.Args, env)...)
	default:
		argv = append(slices.Clone(img.Entrypoint), img.Cmd...)
	}
	if len(argv) == 0 {
		return nil, configErrorf("no command specified: the container has no command and the image %q has no entrypoint or cmd", c.Image)
	}
	return argv, nil
}

// environment builds the container's environment: the image's, then
// HOSTNAME, then the container's own variables (containerEnv), those of
// env each able to refer to earlier ones as $(NAME). As in Kubernetes,
// $(NAME) sees only the container's own variables, never the image's
// (a $(PATH) stays as written); the map returned, for command and args,
// holds those alone too.
func environment(pod *corev1.Pod, c *corev1.Container, img images.ImageConfig, own []envVar) ([]string, map[string]string) {
	vals := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	for _, kv := range img.Env {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	set("HOSTNAME", pod.Name)
	ownVals := make(map[string]string, len(own))
	for _, e := range own {
		v := e.value
		if e.expand {
			v = expand(v, ownVals)
		}
		ownVals[e.name] = v
		set(e.name, v)
	}
	env := make([]string, 0, len(order))
	for _, k := range order {
		env = append(env, k+"="+vals[k])
	}
	return env, ownVals
}

// envVar is one variable of a container's own environment.
type envVar struct {
	name, value string
	// expand is set for a literal value of env, in which $(NAME) refers
	// to a variable defined before it; values read from objects and
	// fields are taken as they are.
	expand bool
}

// containerEnv resolves the container's own variables as Kubernetes'
// kubelet does: every envFrom source in order (each key of the
// ConfigMap's or Secret's data, with the source's prefix), then env in
// order, a later variable replacing an earlier one of the same name.
// f holds the pod's ConfigMaps and Secrets at this sync, and the rest
// the downward API reads.
//
// A ConfigMap, Secret or key that cannot be read fails the container
// (CreateContainerConfigError, with Kubernetes' message) unless its
// reference is optional. Keys of an envFrom source that are not valid
// variable names are skipped: skipped holds one message per source that
// had some, for an InvalidEnvironmentVariableNames event.
func containerEnv(pod *corev1.Pod, c *corev1.Container, f podFacts) (vars []envVar, skipped []string, err error) {
	objs := f.objs
	for _, from := range c.EnvFrom {
		var data map[string]string
		var kind, name string
		switch {
		case from.ConfigMapRef != nil:
			kind, name = "configMap", from.ConfigMapRef.Name
			cm, err := objs.configMap(pod.Namespace, name)
			if err != nil {
				if apierrors.IsNotFound(err) && ptrTrue(from.ConfigMapRef.Optional) {
					continue
				}
				return nil, nil, &configError{msg: err.Error(), cause: err}
			}
			data = cm.Data
		case from.SecretRef != nil:
			kind, name = "secret", from.SecretRef.Name
			sec, err := objs.secret(pod.Namespace, name)
			if err != nil {
				if apierrors.IsNotFound(err) && ptrTrue(from.SecretRef.Optional) {
					continue
				}
				return nil, nil, &configError{msg: err.Error(), cause: err}
			}
			data = make(map[string]string, len(sec.Data))
			for k, v := range sec.Data {
				data[k] = string(v)
			}
		default:
			continue
		}
		var invalid []string
		for _, k := range slices.Sorted(maps.Keys(data)) {
			key := from.Prefix + k
			if len(validation.IsRelaxedEnvVarName(key)) > 0 {
				invalid = append(invalid, key)
				continue
			}
			vars = append(vars, envVar{name: key, value: data[k]})
		}
		if len(invalid) > 0 {
			skipped = append(skipped, fmt.Sprintf("Keys [%s] from the EnvFrom %s %s/%s were skipped since they are considered invalid environment variable names.", strings.Join(invalid, ", "), kind, pod.Namespace, name))
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			vars = append(vars, envVar{name: e.Name, value: e.Value, expand: true})
			continue
		}
		v, ok, err := valueFrom(pod, c, e, f)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			vars = append(vars, envVar{name: e.Name, value: v})
		}
	}
	return vars, skipped, nil
}

func ptrTrue(b *bool) bool { return b != nil && *b }

// valueFrom resolves an env var's valueFrom; ok is false when the
// variable is left out (an optional reference to what does not exist).
func valueFrom(pod *corev1.Pod, c *corev1.Container, e corev1.EnvVar, f podFacts) (v string, ok bool, err error) {
	src, objs := e.ValueFrom, f.objs
	switch {
	case src.FieldRef != nil:
		v, err := fieldValue(pod, src.FieldRef.FieldPath, f.podIP, f.hostIP)
		if err != nil {
			return "", false, configErrorf("env %s: %v", e.Name, err)
		}
		return v, true, nil
	case src.ResourceFieldRef != nil:
		v, err := resourceValue(pod, c, src.ResourceFieldRef, f.allocatable)
		if err != nil {
			return "", false, configErrorf("env %s: %v", e.Name, err)
		}
		return v, true, nil
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		optional := ptrTrue(ref.Optional)
		cm, err := objs.configMap(pod.Namespace, ref.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && optional {
				return "", false, nil
			}
			return "", false, &configError{msg: err.Error(), cause: err}
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			if optional {
				return "", false, nil
			}
			return "", false, configErrorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, pod.Namespace, ref.Name)
		}
		return v, true, nil
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		optional := ptrTrue(ref.Optional)
		sec, err := objs.secret(pod.Namespace, ref.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && optional {
				return "", false, nil
			}
			return "", false, &configError{msg: err.Error(), cause: err}
		}
		b, ok := sec.Data[ref.Key]
		if !ok {
			if optional {
				return "", false, nil
			}
			return "", false, configErrorf("couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name)
		}
		return string(b), true, nil
	}
	return "", false, configErrorf("env %s: valueFrom names no source", e.Name)
}

// fieldValue is the value of a downward API field of the pod: every
// field Kubernetes offers to env, and to downwardAPI volumes also all
// labels or all annotations at once (metadata.labels,
// metadata.annotations), one key="value" line each, sorted.
func fieldValue(pod *corev1.Pod, path, podIP, hostIP string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		// One address per family; Skiff's pods have one (IPv4), so the
		// comma-separated list is that address.
		return podIP, nil
	case "status.hostIP", "status.hostIPs":
		return hostIP, nil
	}
	for prefix, m := range map[string]map[string]string{"metadata.labels": pod.Labels, "metadata.annotations": pod.Annotations} {
		if key, ok := strings.CutPrefix(path, prefix+"['"); ok && strings.HasSuffix(key, "']") {
			return m[strings.TrimSuffix(key, "']")], nil
		}
	}
	return "", fmt.Errorf("fieldRef %q is not supported", path)
}

// formatMap writes labels or annotations as a downwardAPI volume's file
// holds them: key="value" lines (the value quoted as Go does), sorted by
// key, without a final newline.
func formatMap(m map[string]string) string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return b.String()
}

// podFacts is what a pod's environment and written volumes are made of
// besides the pod object.
type podFacts struct {
	// objs holds the pod's ConfigMaps and Secrets as this sync read them.
	objs *podObjects
	// podIP and hostIP are the pod's and the node's addresses.
	podIP, hostIP string
	// allocatable is the node's: a limit a container does not set is
	// reported as the node's allocatable amount, as in Kubernetes.
	allocatable corev1.ResourceList
}

// resourceValue is the value of a resourceFieldRef: a request or limit
// of the container (c, or the one the reference names), in units of the
// divisor, rounded up as Kubernetes does. An unset limit is the node's
// allocatable amount (from allocatable), an unset request 0.
func resourceValue(pod *corev1.Pod, c *corev1.Container, ref *corev1.ResourceFieldSelector, allocatable corev1.ResourceList) (string, error) {
	target := c
	if ref.ContainerName != "" {
		target = findContainer(pod, ref.ContainerName)
	}
	if target == nil {
		return "", fmt.Errorf("resourceFieldRef names no container %q", ref.ContainerName)
	}
	kind, name, _ := strings.Cut(ref.Resource, ".")
	list := target.Resources.Requests
	if kind == "limits" {
		list = target.Resources.Limits
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok && kind == "limits" {
		q, ok = allocatable[corev1.ResourceName(name)]
	}
	if !ok {
		return "0", nil
	}
	div := ref.Divisor
	if div.IsZero() {
		div = resource.MustParse("1")
	}
	v := (q.MilliValue() + div.MilliValue() - 1) / div.MilliValue()
	return strconv.FormatInt(v, 10), nil
}

func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	return nil
}

func expandAll(in []string, env map[string]string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = expand(s, env)
	}
	return out
}

// expand replaces $(NAME) with NAME's value when NAME is defined, and
// $$(NAME) with a literal $(NAME), as Kubernetes does; anything else stays
// as written.
func expand(s string, env map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// resources turns requests and limits into cgroup settings: cpu.shares
// from the request (2 when none, as for Kubernetes' best-effort pods), a
// CFS quota from the limit, a memory limit.
func resources(c *corev1.Container) runtime.Resources {
	const period = 100000 // µs
	var r runtime.Resources
	r.CPUShares = 2
	req := c.Resources.Requests.Cpu()
	if req.IsZero() {
		req = c.Resources.Limits.Cpu()
	}
	if m := req.MilliValue(); m > 0 {
		r.CPUShares = uint64(max(2, m*1024/1000))
	}
	if m := c.Resources.Limits.Cpu().MilliValue(); m > 0 {
		r.CPUPeriod = period
		r.CPUQuota = max(1000, m*period/1000)
	}
	if v := c.Resources.Limits.Memory().Value(); v > 0 {
		r.MemoryLimit = v
	}
	return r
}

// user returns the uid, gid and supplementary groups to run as: the
// container's securityContext, then the pod's, then the image's USER.
func user(pod *corev1.Pod, c *corev1.Container, img *images.Image) (uid, gid uint32, groups []uint32, err error) {
	var runAsUser, runAsGroup *int64
	if psc := pod.Spec.SecurityContext; psc != nil {
		runAsUser, runAsGroup = psc.RunAsUser, psc.RunAsGroup
		for _, g := range psc.SupplementalGroups {
			groups = append(groups, uint32(g))
		}
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			runAsUser = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			runAsGroup = sc.RunAsGroup
		}
	}
	if runAsUser == nil && img.Config.User != "" {
		u, g, hasGroup, err := imageUser(img)
		if err != nil {
			return 0, 0, nil, err
		}
		uid = u
		if hasGroup && runAsGroup == nil {
			gid = g
		}
	}
	if runAsUser != nil {
		uid = uint32(*runAsUser)
	}
	if runAsGroup != nil {
		gid = uint32(*runAsGroup)
	}
	return uid, gid, groups, nil
}

// imageUser resolves the image's USER ("1000", "1000:1000", "app",
// "app:staff") against the image's /etc/passwd and /etc/group.
func imageUser(img *images.Image) (uid, gid uint32, hasGroup bool, err error) {
	u, g, _ := strings.Cut(img.Config.User, ":")
	if n, perr := strconv.ParseUint(u, 10, 32); perr == nil {
		uid = uint32(n)
		if g == "" {
			// A numeric user without a group runs with the user's primary
			// group when the image names one, else group 0.
			if _, pg, ok := lookupFile(img, "etc/passwd", func(f []string) bool { return len(f) > 3 && f[2] == u }); ok {
				return uid, pg, true, nil
			}
			return uid, 0, true, nil
		}
	} else {
		id, pg, ok := lookupFile(img, "etc/passwd", func(f []string) bool { return f[0] == u })
		if !ok {
			return 0, 0, false, configErrorf("unable to find user %s: no matching entries in passwd file of image %s", u, img.Ref)
		}
		uid, gid, hasGroup = id, pg, true
	}
	if g == "" {
		return uid, gid, hasGroup, nil
	}
	if n, perr := strconv.ParseUint(g, 10, 32); perr == nil {
		return uid, uint32(n), true, nil
	}
	id, _, ok := lookupFile(img, "etc/group", func(f []string) bool { return f[0] == g })
	if !ok {
		return 0, 0, false, configErrorf("unable to find group %s: no matching entries in group file of image %s", g, img.Ref)
	}
	return uid, id, true, nil
}

// lookupFile finds a line of a passwd-style file in the image's topmost
// layer that has the file, and returns its third and fourth fields.
func lookupFile(img *images.Image, name string, match func([]string) bool) (third, fourth uint32, ok bool) {
	for i := len(img.LayerDirs) - 1; i >= 0; i-- {
		f, err := os.Open(filepath.Join(img.LayerDirs[i], name))
		if err != nil {
			continue
		}
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			fields := strings.Split(s.Text(), ":")
			if len(fields) < 3 || !match(fields) {
				continue
			}
			a, err := strconv.ParseUint(fields[2], 10, 32)
			if err != nil {
				return 0, 0, false
			}
			var b uint64
			if len(fields) > 3 {
				b, _ = strconv.ParseUint(fields[3], 10, 32)
			}
			return uint32(a), uint32(b), true
		}
		return 0, 0, false
	}
	return 0, 0, false
}

// oomScoreAdj ranks a container for the kernel's OOM killer by its pod's
// QoS class, as Kubernetes does: best-effort pods die first, guaranteed
// ones last, burstable ones by how much memory they asked for out of the
// node's.
func oomScoreAdj(pod *corev1.Pod, c *corev1.Container, nodeMemory int64) int {
	switch pod.Status.QOSClass {
	case corev1.PodQOSGuaranteed:
		return -997
	case corev1.PodQOSBestEffort:
		return 1000
	}
	req := c.Resources.Requests.Memory().Value()
	if nodeMemory <= 0 {
		return 999
	}
	adj := 1000 - 1000*req/nodeMemory
	return int(min(max(adj, 2), 999))
}

// machineMemory is the node's memory in bytes, from /proc/meminfo.
func machineMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
