// Package defaults fills in the fields that Kubernetes fills in when a
// client leaves them out, so that a stored object always says what will
// happen: a Pod without restartPolicy is stored with "Always", a Service
// port without targetPort is stored with targetPort equal to its port.
//
// The API server's registry calls Default on every object it is about to
// create or update, before it validates the object:
//
//  1. decode the request into a typed object;
//  2. defaults.Default(obj) — this package;
//  3. validation.ValidateObject (or ValidateObjectUpdate) on the result;
//  4. store it.
//
// Defaulting happens before validation because many rules assume it: the
// validator requires a Pod's restartPolicy, a Service's sessionAffinity and
// a Deployment's rollingUpdate parameters, all of which are set here.
//
// The values are Kubernetes' own (k8s.io/kubernetes pkg/apis/core/v1 and
// pkg/apis/apps/v1 defaults), so that an object stored by Skiff looks the
// same as one stored by Kubernetes. The functions change the object in
// place, never return errors and never overwrite a field the client set.
// Types the package does not know are left alone.
//
// One Kubernetes rule students often trip over is kept here on purpose:
// some defaults apply to a Pod but not to the pod template inside a
// Deployment or ReplicaSet (requests copied from limits, enableServiceLinks,
// hostPort under hostNetwork). Kubernetes keeps them out of templates so that
// adding a new default never changes every template and rolls out every
// Deployment in the cluster. DefaultPod applies them; DefaultPodSpec does not.
package defaults
