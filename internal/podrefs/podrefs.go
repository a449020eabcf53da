// Package podrefs lists the objects a pod refers to by name: the
// ConfigMaps and Secrets its containers and volumes read, and the
// Secrets it pulls images with.
//
// Two parts of Skiff need the same answer and must never disagree: the
// kubelet, which watches exactly these objects for the pods bound to its
// node, and the API server's Node authorizer, which lets a node read a
// ConfigMap or Secret only when one of its pods refers to it. A reference
// the kubelet follows but the authorizer does not know would leave a pod
// waiting forever; one the authorizer knows but the kubelet does not use
// only widens what a node may read. So both ask this package.
package podrefs

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// ConfigMaps returns the names of the ConfigMaps the pod's containers
// (init and regular) and volumes read, sorted, each once: env
// valueFrom.configMapKeyRef, envFrom configMapRef, configMap volumes and
// the configMap sources of projected volumes.
func ConfigMaps(spec *corev1.PodSpec) []string {
	var out []string
	eachContainer(spec, func(c *corev1.Container) {
		for _, from := range c.EnvFrom {
			if from.ConfigMapRef != nil {
				out = append(out, from.ConfigMapRef.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				out = append(out, e.ValueFrom.ConfigMapKeyRef.Name)
			}
		}
	})
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil {
			out = append(out, v.ConfigMap.Name)
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					out = append(out, s.ConfigMap.Name)
				}
			}
		}
	}
	return unique(out)
}

// Secrets returns the names of the Secrets the pod's containers and
// volumes read, sorted, each once: env valueFrom.secretKeyRef, envFrom
// secretRef, secret volumes and the secret sources of projected volumes.
// Image pull secrets are not among them (PullSecrets).
func Secrets(spec *corev1.PodSpec) []string {
	var out []string
	eachContainer(spec, func(c *corev1.Container) {
		for _, from := range c.EnvFrom {
			if from.SecretRef != nil {
				out = append(out, from.SecretRef.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				out = append(out, e.ValueFrom.SecretKeyRef.Name)
			}
		}
	})
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			out = append(out, v.Secret.SecretName)
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					out = append(out, s.Secret.Name)
				}
			}
		}
	}
	return unique(out)
}

// PullSecrets returns the names of the pod's imagePullSecrets, sorted,
// each once.
func PullSecrets(spec *corev1.PodSpec) []string {
	var out []string
	for _, s := range spec.ImagePullSecrets {
		out = append(out, s.Name)
	}
	return unique(out)
}

// RefersTo reports whether the pod refers to the object of resource
// ("configmaps", "secrets" or "serviceaccounts") called name: in the
// lists above, pull secrets included, or as its service account.
func RefersTo(spec *corev1.PodSpec, resource, name string) bool {
	switch resource {
	case "configmaps":
		return slices.Contains(ConfigMaps(spec), name)
	case "secrets":
		return slices.Contains(Secrets(spec), name) || slices.Contains(PullSecrets(spec), name)
	case "serviceaccounts":
		return spec.ServiceAccountName == name
	}
	return false
}

func eachContainer(spec *corev1.PodSpec, fn func(*corev1.Container)) {
	for i := range spec.InitContainers {
		fn(&spec.InitContainers[i])
	}
	for i := range spec.Containers {
		fn(&spec.Containers[i])
	}
	for i := range spec.EphemeralContainers {
		c := corev1.Container(spec.EphemeralContainers[i].EphemeralContainerCommon)
		fn(&c)
	}
}

func unique(names []string) []string {
	names = slices.DeleteFunc(names, func(s string) bool { return s == "" })
	slices.Sort(names)
	return slices.Compact(names)
}
