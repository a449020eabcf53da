package registry

import (
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffdev/skiff/apiserver/storage"
)

// strategy is what differs between resources in the generic store.
type strategy struct {
	// fields returns the resource's own field-selector fields, beyond
	// metadata.name and metadata.namespace.
	fields func(obj runtime.Object) fields.Set
	// keepStatusOnCreate lets a client set status when creating (nodes:
	// the kubelet registers its node with its capacity).
	keepStatusOnCreate bool
	// prepareForCreate sets server-owned state on a new object.
	prepareForCreate func(obj runtime.Object)
	// prepareForUpdate fills in a replacing object from the stored one
	// before defaults and validation (a service keeps its allocated
	// cluster IP and node ports when the client leaves them out).
	prepareForUpdate func(obj, old runtime.Object)
	// companion keeps other keys in step with the resource's objects, in
	// the same etcd transaction (the service IP and node port bitmaps).
	// Set by strategyFor.
	companion storage.CompanionFunc
	// gracePeriod returns how long a deleted object lingers before it is
	// removed (pods bound to a node wait for their kubelet). Nil means 0.
	gracePeriod func(obj runtime.Object, opts *metav1.DeleteOptions) int64
	// holdsDeletion reports extra conditions that keep a deleted object in
	// storage (a namespace waits for spec.finalizers). Nil means none.
	holdsDeletion func(obj runtime.Object) bool
	// onDelete marks a deleted object (a namespace becomes Terminating).
	onDelete func(obj runtime.Object)
}

// strategies lists every resource's special rules.
var strategies = map[schema.GroupResource]strategy{
	{Resource: "namespaces"}: {
		fields: func(obj runtime.Object) fields.Set {
			return fields.Set{"status.phase": string(obj.(*corev1.Namespace).Status.Phase)}
		},
		prepareForCreate: func(obj runtime.Object) {
			ns := obj.(*corev1.Namespace)
			ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
			// The namespace controller removes this finalizer once the
			// namespace is empty; until then a deleted namespace stays.
			if len(ns.Spec.Finalizers) == 0 {
				ns.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
			}
		},
		holdsDeletion: func(obj runtime.Object) bool { return len(obj.(*corev1.Namespace).Spec.Finalizers) > 0 },
		onDelete:      func(obj runtime.Object) { obj.(*corev1.Namespace).Status.Phase = corev1.NamespaceTerminating },
	},
	{Resource: "nodes"}: {
		fields: func(obj runtime.Object) fields.Set {
			return fields.Set{"spec.unschedulable": fmt.Sprint(obj.(*corev1.Node).Spec.Unschedulable)}
		},
		keepStatusOnCreate: true,
	},
	{Resource: "pods"}: {
		fields: func(obj runtime.Object) fields.Set {
			p := obj.(*corev1.Pod)
			return fields.Set{
				"spec.nodeName":            p.Spec.NodeName,
				"spec.restartPolicy":       string(p.Spec.RestartPolicy),
				"spec.schedulerName":       p.Spec.SchedulerName,
				"spec.serviceAccountName":  p.Spec.ServiceAccountName,
				"status.phase":             string(p.Status.Phase),
				"status.podIP":             p.Status.PodIP,
				"status.nominatedNodeName": p.Status.NominatedNodeName,
			}
		},
		prepareForCreate: func(obj runtime.Object) {
			p := obj.(*corev1.Pod)
			p.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: qosClass(&p.Spec)}
			defaultServiceAccount(p)
		},
		gracePeriod: podGracePeriod,
	},
	{Resource: "services"}: {
		fields: func(obj runtime.Object) fields.Set {
			s := obj.(*corev1.Service)
			return fields.Set{"spec.clusterIP": s.Spec.ClusterIP, "spec.type": string(s.Spec.Type)}
		},
		// Cluster IPs and node ports are allocated by the companion that
		// strategyFor adds (service.go).
		prepareForUpdate: prepareServiceForUpdate,
	},
	{Resource: "events"}: {
		fields: func(obj runtime.Object) fields.Set {
			e := obj.(*corev1.Event)
			return fields.Set{
				"involvedObject.kind":            e.InvolvedObject.Kind,
				"involvedObject.namespace":       e.InvolvedObject.Namespace,
				"involvedObject.name":            e.InvolvedObject.Name,
				"involvedObject.uid":             string(e.InvolvedObject.UID),
				"involvedObject.apiVersion":      e.InvolvedObject.APIVersion,
				"involvedObject.resourceVersion": e.InvolvedObject.ResourceVersion,
				"involvedObject.fieldPath":       e.InvolvedObject.FieldPath,
				"reason":                         e.Reason,
				"reportingComponent":             e.ReportingController,
				"source":                         e.Source.Component,
				"type":                           e.Type,
			}
		},
	},
	{Resource: "configmaps"}:                         {},
	{Resource: "secrets"}:                            {fields: func(obj runtime.Object) fields.Set { return fields.Set{"type": string(obj.(*corev1.Secret).Type)} }},
	{Resource: "serviceaccounts"}:                    {},
	{Group: "apps", Resource: "deployments"}:         {},
	{Group: "apps", Resource: "replicasets"}:         {},
	{Group: "apps", Resource: "daemonsets"}:          {},
	{Group: "apps", Resource: "controllerrevisions"}: {},
	{Group: "batch", Resource: "jobs"}: {
		fields: func(obj runtime.Object) fields.Set {
			return fields.Set{"status.successful": fmt.Sprint(obj.(*batchv1.Job).Status.Succeeded)}
		},
		prepareForCreate: prepareJobForCreate,
	},
	{Group: "batch", Resource: "cronjobs"}:                  {},
	{Group: "discovery.k8s.io", Resource: "endpointslices"}: {},
	{Group: "coordination.k8s.io", Resource: "leases"}:      {},
}

// Compile-time reminder of the types the strategies above switch on.
var _ = []runtime.Object{&appsv1.Deployment{}, &discoveryv1.EndpointSlice{}, &coordinationv1.Lease{}}

// attrFunc returns the selector attributes of a resource's objects.
func (st strategy) attrFunc() func(obj runtime.Object) (labels.Set, fields.Set) {
	return func(obj runtime.Object) (labels.Set, fields.Set) {
		m, err := meta.Accessor(obj)
		if err != nil {
			return nil, nil
		}
		f := fields.Set{}
		if st.fields != nil {
			f = st.fields(obj)
		}
		f["metadata.name"] = m.GetName()
		f["metadata.namespace"] = m.GetNamespace()
		return labels.Set(m.GetLabels()), f
	}
}

// podGracePeriod is how long a deleted pod lingers: a pod bound to a node
// waits for its kubelet to stop the containers and confirm; an unbound or
// finished pod goes at once.
func podGracePeriod(obj runtime.Object, opts *metav1.DeleteOptions) int64 {
	p := obj.(*corev1.Pod)
	if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return 0
	}
	if opts != nil && opts.GracePeriodSeconds != nil {
		return max(*opts.GracePeriodSeconds, 0)
	}
	if p.Spec.TerminationGracePeriodSeconds != nil {
		return *p.Spec.TerminationGracePeriodSeconds
	}
	return corev1.DefaultTerminationGracePeriodSeconds
}

// qosClass classifies a pod as Kubernetes does: Guaranteed when every
// container has cpu and memory limits equal to its requests, BestEffort
// when none has any, Burstable otherwise.
func qosClass(spec *corev1.PodSpec) corev1.PodQOSClass {
	any, guaranteed := false, true
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[r]
			lim, hasLim := c.Resources.Limits[r]
			if hasReq || hasLim {
				any = true
			}
			if !hasLim || (hasReq && req.Cmp(lim) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// statusField returns the object's Status field, if it has one.
func statusField(obj runtime.Object) (reflect.Value, bool) {
	v := reflect.ValueOf(obj).Elem().FieldByName("Status")
	return v, v.IsValid()
}

// resetStatus clears an object's status.
func resetStatus(obj runtime.Object) {
	if v, ok := statusField(obj); ok {
		v.Set(reflect.Zero(v.Type()))
	}
}

// copyStatus sets dst's status to src's.
func copyStatus(dst, src runtime.Object) {
	d, ok := statusField(dst)
	if !ok {
		return
	}
	s, _ := statusField(src)
	d.Set(s)
}

// specChanged reports whether anything but metadata and status differs
// between two objects: the rule for bumping metadata.generation.
func specChanged(a, b runtime.Object) bool {
	strip := func(obj runtime.Object) runtime.Object {
		c := obj.DeepCopyObject()
		v := reflect.ValueOf(c).Elem()
		for _, name := range []string{"TypeMeta", "ObjectMeta", "Status"} {
			if f := v.FieldByName(name); f.IsValid() {
				f.Set(reflect.Zero(f.Type()))
			}
		}
		return c
	}
	return !equality.Semantic.DeepEqual(strip(a), strip(b))
}

// strategyFor returns a resource's strategy with the registry's
// configuration applied: services get their allocator (objects under
// prefix), pods get the default tolerations admission when
// cfg.DefaultTolerationSeconds is set.
func strategyFor(gr schema.GroupResource, cfg Config, prefix string) (strategy, bool) {
	st, ok := strategies[gr]
	if ok && gr == servicesResource {
		st.companion = newServiceAllocator(cfg, prefix).companion
		return st, true
	}
	if !ok || gr != (schema.GroupResource{Resource: "pods"}) || cfg.DefaultTolerationSeconds == nil {
		return st, ok
	}
	seconds := *cfg.DefaultTolerationSeconds
	prepare := st.prepareForCreate
	st.prepareForCreate = func(obj runtime.Object) {
		if prepare != nil {
			prepare(obj)
		}
		addDefaultTolerations(obj.(*corev1.Pod), seconds)
	}
	return st, true
}

// defaultServiceAccount is the defaulting half of Kubernetes'
// ServiceAccount admission: a new pod that names no ServiceAccount runs as
// "default", which the service account controller makes in every
// namespace. A mirror pod is left without one (it may not name any:
// NodeRestriction). Unlike Kubernetes, Skiff neither refuses a pod whose
// ServiceAccount does not exist yet nor mounts a token: tokens come with
// a token issuer, which Skiff does not have yet.
func defaultServiceAccount(pod *corev1.Pod) {
	if _, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return
	}
	if pod.Spec.ServiceAccountName == "" && pod.Spec.DeprecatedServiceAccount == "" {
		pod.Spec.ServiceAccountName = "default"
	}
}

// addDefaultTolerations is Kubernetes' DefaultTolerationSeconds admission:
// a new pod that does not tolerate the node.kubernetes.io/not-ready or
// node.kubernetes.io/unreachable NoExecute taint gets a toleration of it
// for seconds, so that a node's short outage does not evict its pods at
// once, while a long one does (the node lifecycle controller evicts them
// when the toleration runs out).
func addDefaultTolerations(pod *corev1.Pod, seconds int64) {
	for _, key := range []string{corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable} {
		taint := corev1.Taint{Key: key, Effect: corev1.TaintEffectNoExecute}
		if toleratesAny(pod.Spec.Tolerations, &taint) {
			continue
		}
		pod.Spec.Tolerations = append(pod.Spec.Tolerations, corev1.Toleration{
			Key:               key,
			Operator:          corev1.TolerationOpExists,
			Effect:            corev1.TaintEffectNoExecute,
			TolerationSeconds: new(seconds),
		})
	}
}

// toleratesAny reports whether one of tolerations tolerates taint, by
// Kubernetes' rules: an empty effect matches every effect, an empty key
// with operator Exists matches every key, Equal (the default operator)
// also compares the value.
func toleratesAny(tolerations []corev1.Toleration, taint *corev1.Taint) bool {
	for _, t := range tolerations {
		if t.Effect != "" && t.Effect != taint.Effect {
			continue
		}
		if t.Key != "" && t.Key != taint.Key {
			continue
		}
		switch t.Operator {
		case corev1.TolerationOpExists:
			return true
		case "", corev1.TolerationOpEqual:
			if t.Key != "" && t.Value == taint.Value {
				return true
			}
		}
	}
	return false
}
