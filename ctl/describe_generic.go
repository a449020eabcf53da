package ctl

import (
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/skiffdev/skiff/internal/scheme"
)

// This file describes namespaces, and objects of the resources without a
// layout of their own, field by field.

// describeNamespace writes a namespace. Skiff has no resource quotas or
// limit ranges, so it says so as kubectl does for a namespace without.
func describeNamespace(ns *corev1.Namespace) string {
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", ns.Name)
	w.labels("", "Labels", ns.Labels)
	w.annotations("", "Annotations", ns.Annotations)
	w.write(0, "Status:\t%s\n", ns.Status.Phase)
	w.write(0, "\nNo resource quota.\n")
	w.write(0, "\nNo LimitRange resource.\n")
	return w.String()
}

// describeGeneric describes an object of a resource without its own
// layout: its metadata, then each of its other top-level fields as YAML.
func describeGeneric(info *scheme.ResourceInfo, obj runtime.Object, events *corev1.EventList, now time.Time) (string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return "", err
	}
	obj = obj.DeepCopyObject()
	if err := scheme.SetTypeMeta(obj); err != nil {
		return "", err
	}
	data, err := yaml.Marshal(obj)
	if err != nil {
		return "", err
	}
	var fieldsOf map[string]any
	if err := yaml.Unmarshal(data, &fieldsOf); err != nil {
		return "", err
	}
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", m.GetName())
	if info.Namespaced {
		w.write(0, "Namespace:\t%s\n", m.GetNamespace())
	}
	w.labels("", "Labels", m.GetLabels())
	w.annotations("", "Annotations", m.GetAnnotations())
	w.write(0, "API Version:\t%s\n", info.GroupVersionKind().GroupVersion().String())
	w.write(0, "Kind:\t%s\n", info.Kind)
	w.write(0, "CreationTimestamp:\t%s\n", rfc1123(m.GetCreationTimestamp()))
	keys := make([]string, 0, len(fieldsOf))
	for k := range fieldsOf {
		switch k {
		case "apiVersion", "kind", "metadata":
		default:
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch v := fieldsOf[k].(type) {
		case map[string]any, []any:
		default:
			w.write(0, "%s:\t%v\n", fieldTitle(k), v)
			continue
		}
		text, err := yaml.Marshal(fieldsOf[k])
		if err != nil {
			return "", err
		}
		w.write(0, "%s:\n", fieldTitle(k))
		for _, line := range strings.Split(strings.TrimRight(string(text), "\n"), "\n") {
			w.write(1, "%s\n", line)
		}
	}
	w.events(events, now)
	return w.String(), nil
}

// fieldTitle turns a field name into a title: "addressType" becomes
// "Address Type".
func fieldTitle(field string) string {
	var b strings.Builder
	for i, r := range field {
		if i == 0 {
			b.WriteString(strings.ToUpper(string(r)))
			continue
		}
		if r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}
