package validation

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/sets"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateContainers checks a pod's regular containers. names collects the
// container names seen so far in the pod.
func validateContainers(containers []corev1.Container, volumes, names sets.Set[string], gracePeriod *int64, path *field.Path) field.ErrorList {
	if len(containers) == 0 {
		return field.ErrorList{field.Required(path, "")}
	}
	var errs field.ErrorList
	for i := range containers {
		c, idx := &containers[i], path.Index(i)
		errs = append(errs, validateContainerName(c.Name, names, idx.Child("name"))...)
		errs = append(errs, validateContainer(c, volumes, gracePeriod, idx)...)
		errs = append(errs, validateProbeSuccessThresholds(c, idx)...)
		if c.RestartPolicy != nil {
			errs = append(errs, field.Forbidden(idx.Child("restartPolicy"), "may not be set for non-init containers"))
		}
	}
	return errs
}

// validateInitContainers checks a pod's init containers. An ordinary init
// container runs to completion before the next one starts, so probes and
// lifecycle hooks make no sense for it; an init container with
// restartPolicy Always is a "sidecar" that keeps running next to the
// regular containers, and may have them.
func validateInitContainers(containers []corev1.Container, volumes, names sets.Set[string], gracePeriod *int64, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i := range containers {
		c, idx := &containers[i], path.Index(i)
		errs = append(errs, validateContainerName(c.Name, names, idx.Child("name"))...)
		errs = append(errs, validateContainer(c, volumes, gracePeriod, idx)...)

		sidecar := false
		if p := c.RestartPolicy; p != nil {
			if *p == corev1.ContainerRestartPolicyAlways {
				sidecar = true
			} else {
				errs = append(errs, field.NotSupported(idx.Child("restartPolicy"), *p, []corev1.ContainerRestartPolicy{corev1.ContainerRestartPolicyAlways}))
			}
		}
		if sidecar {
			errs = append(errs, validateProbeSuccessThresholds(c, idx)...)
			continue
		}
		const notForInit = "may not be set for init containers without restartPolicy=Always"
		if c.Lifecycle != nil {
			errs = append(errs, field.Forbidden(idx.Child("lifecycle"), notForInit))
		}
		if c.LivenessProbe != nil {
			errs = append(errs, field.Forbidden(idx.Child("livenessProbe"), notForInit))
		}
		if c.ReadinessProbe != nil {
			errs = append(errs, field.Forbidden(idx.Child("readinessProbe"), notForInit))
		}
		if c.StartupProbe != nil {
			errs = append(errs, field.Forbidden(idx.Child("startupProbe"), notForInit))
		}
	}
	return errs
}

// validateContainerName requires a DNS label not used by another container
// of the pod, and records it in names.
func validateContainerName(name string, names sets.Set[string], path *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	errs := validateDNS1123Label(name, path)
	if names.Has(name) {
		errs = append(errs, field.Duplicate(path, name))
	}
	names.Insert(name)
	return errs
}

var (
	supportedPullPolicies       = []corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever}
	supportedPortProtocols      = []corev1.Protocol{corev1.ProtocolSCTP, corev1.ProtocolTCP, corev1.ProtocolUDP}
	supportedTerminationMessage = []corev1.TerminationMessagePolicy{corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError}
)

// validateContainer checks the fields every kind of container has.
func validateContainer(c *corev1.Container, volumes sets.Set[string], gracePeriod *int64, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.Image == "" {
		errs = append(errs, field.Required(path.Child("image"), ""))
	}
	switch p := c.ImagePullPolicy; {
	case p == "":
		errs = append(errs, field.Required(path.Child("imagePullPolicy"), ""))
	case !slices.Contains(supportedPullPolicies, p):
		errs = append(errs, field.NotSupported(path.Child("imagePullPolicy"), p, supportedPullPolicies))
	}
	switch p := c.TerminationMessagePolicy; {
	case p == "":
		errs = append(errs, field.Required(path.Child("terminationMessagePolicy"), "must be 'File' or 'FallbackToLogsOnError'"))
	case !slices.Contains(supportedTerminationMessage, p):
		errs = append(errs, field.Invalid(path.Child("terminationMessagePolicy"), p, "must be 'File' or 'FallbackToLogsOnError'"))
	}
	errs = append(errs, validateContainerPorts(c.Ports, path.Child("ports"))...)
	errs = append(errs, validateEnv(c.Env, path.Child("env"))...)
	errs = append(errs, validateEnvFrom(c.EnvFrom, path.Child("envFrom"))...)
	errs = append(errs, validateResources(&c.Resources, path.Child("resources"))...)
	errs = append(errs, validateVolumeMounts(c.VolumeMounts, volumes, c, path.Child("volumeMounts"))...)
	errs = append(errs, validateProbe(c.LivenessProbe, gracePeriod, path.Child("livenessProbe"))...)
	errs = append(errs, validateProbe(c.ReadinessProbe, gracePeriod, path.Child("readinessProbe"))...)
	errs = append(errs, validateProbe(c.StartupProbe, gracePeriod, path.Child("startupProbe"))...)
	if l := c.Lifecycle; l != nil {
		if l.PostStart != nil {
			errs = append(errs, validateHandler(lifecycleHandler(l.PostStart), gracePeriod, path.Child("lifecycle", "postStart"))...)
		}
		if l.PreStop != nil {
			errs = append(errs, validateHandler(lifecycleHandler(l.PreStop), gracePeriod, path.Child("lifecycle", "preStop"))...)
		}
	}
	errs = append(errs, validateSecurityContext(c.SecurityContext, path.Child("securityContext"))...)
	return errs
}

// validateContainerPorts checks the ports a container listens on. Port
// names must be unique within the container, because a Service's
// targetPort may refer to a port by name.
func validateContainerPorts(ports []corev1.ContainerPort, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := sets.New[string]()
	for i, p := range ports {
		idx := path.Index(i)
		if p.Name != "" {
			if msgs := utilvalidation.IsValidPortName(p.Name); len(msgs) > 0 {
				errs = append(errs, invalidEach(idx.Child("name"), p.Name, msgs)...)
			} else if names.Has(p.Name) {
				errs = append(errs, field.Duplicate(idx.Child("name"), p.Name))
			} else {
				names.Insert(p.Name)
			}
		}
		if p.ContainerPort == 0 {
			errs = append(errs, field.Required(idx.Child("containerPort"), ""))
		} else {
			errs = append(errs, invalidEach(idx.Child("containerPort"), p.ContainerPort, utilvalidation.IsValidPortNum(int(p.ContainerPort)))...)
		}
		if p.HostPort != 0 {
			errs = append(errs, invalidEach(idx.Child("hostPort"), p.HostPort, utilvalidation.IsValidPortNum(int(p.HostPort)))...)
		}
		if p.HostIP != "" {
			errs = append(errs, validateIP(p.HostIP, idx.Child("hostIP"))...)
		}
		switch {
		case p.Protocol == "":
			errs = append(errs, field.Required(idx.Child("protocol"), ""))
		case !slices.Contains(supportedPortProtocols, p.Protocol):
			errs = append(errs, field.NotSupported(idx.Child("protocol"), p.Protocol, supportedPortProtocols))
		}
	}
	return errs
}

// validateEnv checks a container's environment variables. Each one has a
// name and either a literal value or exactly one source to read it from.
func validateEnv(vars []corev1.EnvVar, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ev := range vars {
		idx := path.Index(i)
		if ev.Name == "" {
			errs = append(errs, field.Required(idx.Child("name"), ""))
		} else {
			// Kubernetes accepts any printable name without '=' (the
			// RelaxedEnvironmentVariableValidation rule, on by default).
			errs = append(errs, invalidEach(idx.Child("name"), ev.Name, utilvalidation.IsRelaxedEnvVarName(ev.Name))...)
		}
		errs = append(errs, validateEnvVarValueFrom(ev, idx.Child("valueFrom"))...)
	}
	return errs
}

func validateEnvVarValueFrom(ev corev1.EnvVar, path *field.Path) field.ErrorList {
	from := ev.ValueFrom
	if from == nil {
		return nil
	}
	var errs field.ErrorList
	sources := 0
	if from.FieldRef != nil {
		sources++
		errs = append(errs, validateObjectFieldSelector(from.FieldRef, path.Child("fieldRef"))...)
	}
	if from.ResourceFieldRef != nil {
		sources++
		errs = append(errs, validateResourceFieldSelector(from.ResourceFieldRef, path.Child("resourceFieldRef"))...)
	}
	if from.ConfigMapKeyRef != nil {
		sources++
		errs = append(errs, validateKeySelector(from.ConfigMapKeyRef.Name, from.ConfigMapKeyRef.Key, path.Child("configMapKeyRef"))...)
	}
	if from.SecretKeyRef != nil {
		sources++
		errs = append(errs, validateKeySelector(from.SecretKeyRef.Name, from.SecretKeyRef.Key, path.Child("secretKeyRef"))...)
	}
	if from.FileKeyRef != nil {
		sources++
	}
	switch {
	case sources == 0:
		errs = append(errs, field.Invalid(path, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
	case ev.Value != "":
		errs = append(errs, field.Invalid(path, "", "may not be specified when `value` is not empty"))
	case sources > 1:
		errs = append(errs, field.Invalid(path, "", "may not have more than one field specified at a time"))
	}
	return errs
}

// validateKeySelector checks a reference to one key of a ConfigMap or Secret.
func validateKeySelector(name, key string, path *field.Path) field.ErrorList {
	errs := invalidEach(path.Child("name"), name, nameIsDNSSubdomain(name, false))
	if key == "" {
		errs = append(errs, field.Required(path.Child("key"), ""))
	} else {
		errs = append(errs, invalidEach(path.Child("key"), key, utilvalidation.IsConfigMapKey(key))...)
	}
	return errs
}

// envFieldPaths are the pod fields an environment variable may read
// through the downward API, besides single labels and annotations.
var envFieldPaths = []string{
	"metadata.name", "metadata.namespace", "metadata.uid",
	"spec.nodeName", "spec.serviceAccountName",
	"status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
}

// validateObjectFieldSelector checks a downward API reference such as
// "metadata.name" or "metadata.labels['app']".
func validateObjectFieldSelector(s *corev1.ObjectFieldSelector, path *field.Path) field.ErrorList {
	if s.APIVersion == "" {
		return field.ErrorList{field.Required(path.Child("apiVersion"), "")}
	}
	if s.FieldPath == "" {
		return field.ErrorList{field.Required(path.Child("fieldPath"), "")}
	}
	if s.APIVersion != "v1" {
		return field.ErrorList{field.Invalid(path.Child("fieldPath"), s.FieldPath, "error converting fieldPath: unsupported pod version: "+s.APIVersion)}
	}
	if base, key, ok := splitSubscript(s.FieldPath); ok {
		switch base {
		case "metadata.annotations":
			return validateQualifiedName(strings.ToLower(key), path)
		case "metadata.labels":
			return validateQualifiedName(key, path)
		}
		return field.ErrorList{field.Invalid(path.Child("fieldPath"), s.FieldPath, "error converting fieldPath: field label does not support subscript: "+s.FieldPath)}
	}
	if !slices.Contains(envFieldPaths, s.FieldPath) {
		return field.ErrorList{field.NotSupported(path.Child("fieldPath"), s.FieldPath, envFieldPaths)}
	}
	return nil
}

// splitSubscript splits "metadata.labels['app']" into "metadata.labels"
// and "app".
func splitSubscript(fieldPath string) (base, key string, ok bool) {
	if !strings.HasSuffix(fieldPath, "']") {
		return "", "", false
	}
	base, rest, ok := strings.Cut(fieldPath, "['")
	if !ok {
		return "", "", false
	}
	return base, strings.TrimSuffix(rest, "']"), true
}

var resourceFieldPaths = []string{
	"limits.cpu", "limits.ephemeral-storage", "limits.memory",
	"requests.cpu", "requests.ephemeral-storage", "requests.memory",
}

func validateResourceFieldSelector(s *corev1.ResourceFieldSelector, path *field.Path) field.ErrorList {
	switch {
	case s.Resource == "":
		return field.ErrorList{field.Required(path.Child("resource"), "")}
	case !slices.Contains(resourceFieldPaths, s.Resource) && !strings.HasPrefix(s.Resource, "limits.hugepages-") && !strings.HasPrefix(s.Resource, "requests.hugepages-"):
		return field.ErrorList{field.NotSupported(path.Child("resource"), s.Resource, resourceFieldPaths)}
	}
	return nil
}

// validateEnvFrom checks the sources that fill a container's environment
// with every key of a ConfigMap or Secret.
func validateEnvFrom(sources []corev1.EnvFromSource, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, s := range sources {
		idx := path.Index(i)
		if s.Prefix != "" {
			errs = append(errs, invalidEach(idx.Child("prefix"), s.Prefix, utilvalidation.IsRelaxedEnvVarName(s.Prefix))...)
		}
		n := 0
		if s.ConfigMapRef != nil {
			n++
			errs = append(errs, invalidEach(idx.Child("configMapRef", "name"), s.ConfigMapRef.Name, nameIsDNSSubdomain(s.ConfigMapRef.Name, false))...)
		}
		if s.SecretRef != nil {
			n++
			errs = append(errs, invalidEach(idx.Child("secretRef", "name"), s.SecretRef.Name, nameIsDNSSubdomain(s.SecretRef.Name, false))...)
		}
		switch {
		case n == 0:
			errs = append(errs, field.Invalid(idx, "", "must specify one of: `configMapRef` or `secretRef`"))
		case n > 1:
			errs = append(errs, field.Invalid(idx, "", "may not have more than one field specified at a time"))
		}
	}
	return errs
}

// validateResources checks a container's requests and limits: known
// resource names, quantities that are not negative, and requests no larger
// than limits. Resources that cannot be shared out (hugepages, extended
// resources such as "example.com/gpu") need a limit equal to the request.
func validateResources(r *corev1.ResourceRequirements, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	limPath, reqPath := path.Child("limits"), path.Child("requests")
	// Maps have no order; sorting keeps the errors in a stable order.
	for _, name := range sortedKeys(r.Limits) {
		errs = append(errs, validateContainerResource(name, r.Limits[name], limPath.Key(string(name)))...)
	}
	for _, name := range sortedKeys(r.Requests) {
		q := r.Requests[name]
		errs = append(errs, validateContainerResource(name, q, reqPath.Key(string(name)))...)
		limit, ok := r.Limits[name]
		switch {
		case ok && q.Cmp(limit) != 0 && !overcommitAllowed(name):
			errs = append(errs, field.Invalid(reqPath, q.String(), fmt.Sprintf("must be equal to %s limit of %s", name, limit.String())))
		case ok && q.Cmp(limit) > 0:
			errs = append(errs, field.Invalid(reqPath, q.String(), fmt.Sprintf("must be less than or equal to %s limit of %s", name, limit.String())))
		case !ok && !overcommitAllowed(name):
			errs = append(errs, field.Required(limPath, "Limit must be set for non overcommitable resources"))
		}
	}
	for i, c := range r.Claims {
		if c.Name == "" {
			errs = append(errs, field.Required(path.Child("claims").Index(i), ""))
		}
	}
	return errs
}

func sortedKeys(list corev1.ResourceList) []corev1.ResourceName {
	keys := make([]corev1.ResourceName, 0, len(list))
	for k := range list {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// validateContainerResource checks one entry of requests or limits.
func validateContainerResource(name corev1.ResourceName, q resource.Quantity, path *field.Path) field.ErrorList {
	s := string(name)
	errs := invalidEach(path, s, utilvalidation.IsQualifiedName(s))
	if len(errs) > 0 {
		return errs
	}
	switch {
	case !strings.Contains(s, "/"):
		if s != string(corev1.ResourceCPU) && s != string(corev1.ResourceMemory) &&
			s != string(corev1.ResourceEphemeralStorage) && !isHugePages(name) {
			return field.ErrorList{field.Invalid(path, s, "must be a standard resource for containers")}
		}
	case !isNativeResource(name):
		if !isExtendedResource(name) {
			return field.ErrorList{field.Invalid(path, s, "doesn't follow extended resource name standard")}
		}
	}
	errs = validateNonnegativeQuantity(q, path)
	if isExtendedResource(name) && q.MilliValue()%1000 != 0 {
		errs = append(errs, field.Invalid(path, q, "must be an integer"))
	}
	return errs
}

func isHugePages(name corev1.ResourceName) bool {
	return strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix)
}

// isNativeResource reports whether Kubernetes itself defines the resource:
// no domain, or a kubernetes.io domain.
func isNativeResource(name corev1.ResourceName) bool {
	s := string(name)
	return !strings.Contains(s, "/") || strings.Contains(s, corev1.ResourceDefaultNamespacePrefix)
}

// isExtendedResource reports whether the resource is an extended resource
// advertised by a device plugin or an operator, like "example.com/gpu".
func isExtendedResource(name corev1.ResourceName) bool {
	s := string(name)
	if isNativeResource(name) || strings.HasPrefix(s, corev1.DefaultResourceRequestsPrefix) {
		return false
	}
	return len(utilvalidation.IsQualifiedName(corev1.DefaultResourceRequestsPrefix+s)) == 0
}

// overcommitAllowed reports whether a node may promise more of the
// resource than it has: true for cpu, memory and ephemeral storage.
func overcommitAllowed(name corev1.ResourceName) bool {
	return isNativeResource(name) && !isHugePages(name)
}

// validateProbeSuccessThresholds: a liveness or startup probe either
// passes or kills the container, so needing several passes in a row means
// nothing.
func validateProbeSuccessThresholds(c *corev1.Container, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if p := c.LivenessProbe; p != nil && p.SuccessThreshold != 1 {
		errs = append(errs, field.Invalid(path.Child("livenessProbe", "successThreshold"), p.SuccessThreshold, "must be 1"))
	}
	if p := c.StartupProbe; p != nil && p.SuccessThreshold != 1 {
		errs = append(errs, field.Invalid(path.Child("startupProbe", "successThreshold"), p.SuccessThreshold, "must be 1"))
	}
	return errs
}

// validateProbe checks a liveness, readiness or startup probe. Zero
// timings are replaced by defaults before validation, so only negative
// values are wrong here.
func validateProbe(p *corev1.Probe, gracePeriod *int64, path *field.Path) field.ErrorList {
	if p == nil {
		return nil
	}
	h := p.ProbeHandler
	errs := validateHandler(handler{Exec: h.Exec, HTTPGet: h.HTTPGet, TCPSocket: h.TCPSocket, GRPC: h.GRPC}, gracePeriod, path)
	errs = append(errs, validateNonnegativeField(int64(p.InitialDelaySeconds), path.Child("initialDelaySeconds"))...)
	errs = append(errs, validateNonnegativeField(int64(p.TimeoutSeconds), path.Child("timeoutSeconds"))...)
	errs = append(errs, validateNonnegativeField(int64(p.PeriodSeconds), path.Child("periodSeconds"))...)
	errs = append(errs, validateNonnegativeField(int64(p.SuccessThreshold), path.Child("successThreshold"))...)
	errs = append(errs, validateNonnegativeField(int64(p.FailureThreshold), path.Child("failureThreshold"))...)
	if g := p.TerminationGracePeriodSeconds; g != nil && *g <= 0 {
		errs = append(errs, field.Invalid(path.Child("terminationGracePeriodSeconds"), *g, isNotPositiveErrorMsg))
	}
	return errs
}

// handler is the union of the ways a probe or a lifecycle hook can check
// or act on a container. Exactly one field is set.
type handler struct {
	Exec      *corev1.ExecAction
	HTTPGet   *corev1.HTTPGetAction
	TCPSocket *corev1.TCPSocketAction
	GRPC      *corev1.GRPCAction
	Sleep     *corev1.SleepAction
}

func lifecycleHandler(h *corev1.LifecycleHandler) handler {
	return handler{Exec: h.Exec, HTTPGet: h.HTTPGet, TCPSocket: h.TCPSocket, Sleep: h.Sleep}
}

var supportedHTTPSchemes = []corev1.URIScheme{corev1.URISchemeHTTP, corev1.URISchemeHTTPS}

func validateHandler(h handler, gracePeriod *int64, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	// one is called for each handler that is set; the first one found is
	// validated, any further one is an error.
	one := func(name string, validate func(*field.Path) field.ErrorList) {
		if n > 0 {
			errs = append(errs, field.Forbidden(path.Child(name), "may not specify more than 1 handler type"))
			return
		}
		n++
		errs = append(errs, validate(path.Child(name))...)
	}
	if e := h.Exec; e != nil {
		one("exec", func(p *field.Path) field.ErrorList {
			if len(e.Command) == 0 {
				return field.ErrorList{field.Required(p.Child("command"), "")}
			}
			return nil
		})
	}
	if g := h.HTTPGet; g != nil {
		one("httpGet", func(p *field.Path) field.ErrorList {
			var errs field.ErrorList
			if g.Path == "" {
				errs = append(errs, field.Required(p.Child("path"), ""))
			}
			errs = append(errs, validatePortNumOrName(g.Port, p.Child("port"))...)
			if !slices.Contains(supportedHTTPSchemes, g.Scheme) {
				errs = append(errs, field.NotSupported(p.Child("scheme"), g.Scheme, supportedHTTPSchemes))
			}
			for _, header := range g.HTTPHeaders {
				errs = append(errs, invalidEach(p.Child("httpHeaders"), header.Name, utilvalidation.IsHTTPHeaderName(header.Name))...)
			}
			return errs
		})
	}
	if t := h.TCPSocket; t != nil {
		one("tcpSocket", func(p *field.Path) field.ErrorList {
			return validatePortNumOrName(t.Port, p.Child("port"))
		})
	}
	if g := h.GRPC; g != nil {
		one("grpc", func(p *field.Path) field.ErrorList {
			return invalidEach(p.Child("port"), g.Port, utilvalidation.IsValidPortNum(int(g.Port)))
		})
	}
	if s := h.Sleep; s != nil {
		one("sleep", func(p *field.Path) field.ErrorList {
			// A nil grace period is reported elsewhere.
			if gracePeriod != nil && (s.Seconds < 0 || s.Seconds > *gracePeriod) {
				return field.ErrorList{field.Invalid(p, s.Seconds, fmt.Sprintf("must be non-negative and less than terminationGracePeriodSeconds (%d)", *gracePeriod))}
			}
			return nil
		})
	}
	if n == 0 {
		errs = append(errs, field.Required(path, "must specify a handler type"))
	}
	return errs
}

var supportedProcMounts = []corev1.ProcMountType{corev1.DefaultProcMount, corev1.UnmaskedProcMount}

// validateSecurityContext checks a container's securityContext.
func validateSecurityContext(sc *corev1.SecurityContext, path *field.Path) field.ErrorList {
	if sc == nil {
		return nil
	}
	var errs field.ErrorList
	if sc.RunAsUser != nil {
		errs = append(errs, invalidEach(path.Child("runAsUser"), *sc.RunAsUser, utilvalidation.IsValidUserID(*sc.RunAsUser))...)
	}
	if sc.RunAsGroup != nil {
		errs = append(errs, invalidEach(path.Child("runAsGroup"), *sc.RunAsGroup, utilvalidation.IsValidGroupID(*sc.RunAsGroup))...)
	}
	if sc.ProcMount != nil && !slices.Contains(supportedProcMounts, *sc.ProcMount) {
		errs = append(errs, field.NotSupported(path.Child("procMount"), *sc.ProcMount, supportedProcMounts))
	}
	errs = append(errs, validateSeccompProfile(sc.SeccompProfile, path.Child("seccompProfile"))...)
	// A privileged process, or one holding CAP_SYS_ADMIN, can always gain
	// privileges, so asking for both is a contradiction.
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		if sc.Privileged != nil && *sc.Privileged {
			errs = append(errs, field.Invalid(path, sc, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
		}
		if sc.Capabilities != nil && slices.Contains(sc.Capabilities.Add, "CAP_SYS_ADMIN") {
			errs = append(errs, field.Invalid(path, sc, "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN"))
		}
	}
	return errs
}

var supportedSeccompTypes = []corev1.SeccompProfileType{corev1.SeccompProfileTypeLocalhost, corev1.SeccompProfileTypeRuntimeDefault, corev1.SeccompProfileTypeUnconfined}

func validateSeccompProfile(p *corev1.SeccompProfile, path *field.Path) field.ErrorList {
	if p == nil {
		return nil
	}
	switch {
	case !slices.Contains(supportedSeccompTypes, p.Type):
		return field.ErrorList{field.NotSupported(path.Child("type"), p.Type, supportedSeccompTypes)}
	case p.Type == corev1.SeccompProfileTypeLocalhost && (p.LocalhostProfile == nil || *p.LocalhostProfile == ""):
		return field.ErrorList{field.Required(path.Child("localhostProfile"), "must be set when seccomp type is Localhost")}
	case p.Type != corev1.SeccompProfileTypeLocalhost && p.LocalhostProfile != nil:
		return field.ErrorList{field.Invalid(path.Child("localhostProfile"), p.LocalhostProfile, "can only be set when seccomp type is Localhost")}
	}
	return nil
}
