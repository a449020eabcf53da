package ctl

import (
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// This file describes ConfigMaps, Secrets and ServiceAccounts, in
// kubectl's layouts. A Secret's values are never shown: only each key's
// size.

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// describeConfigMap writes each data key, a "----" rule and its value,
// then each binary key with its size, then the events.
func describeConfigMap(cm *corev1.ConfigMap, events *corev1.EventList, now time.Time) string {
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", cm.Name)
	w.write(0, "Namespace:\t%s\n", cm.Namespace)
	w.labels("", "Labels", cm.Labels)
	w.annotations("", "Annotations", cm.Annotations)
	w.write(0, "\nData\n====\n")
	for _, k := range sortedKeys(cm.Data) {
		w.write(0, "%s:\n----\n", k)
		w.write(0, "%s\n", cm.Data[k])
		w.write(0, "\n")
	}
	w.write(0, "\nBinaryData\n====\n")
	for _, k := range sortedKeys(cm.BinaryData) {
		w.write(0, "%s: %d bytes\n", k, len(cm.BinaryData[k]))
	}
	w.write(0, "\n")
	w.events(events, now)
	return w.String()
}

// describeSecret writes the type and each key with the size of its value,
// never the value. kubectl shows no events for a Secret.
func describeSecret(s *corev1.Secret) string {
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", s.Name)
	w.write(0, "Namespace:\t%s\n", s.Namespace)
	w.labels("", "Labels", s.Labels)
	w.annotations("", "Annotations", s.Annotations)
	w.write(0, "\nType:\t%s\n", s.Type)
	w.write(0, "\nData\n====\n")
	for _, k := range sortedKeys(s.Data) {
		w.write(0, "%s:\t%d bytes\n", k, len(s.Data[k]))
	}
	return w.String()
}

// describeServiceAccount writes the secrets a ServiceAccount names and
// the token Secrets made for it (tokens), then the events.
func describeServiceAccount(sa *corev1.ServiceAccount, tokens []corev1.Secret, events *corev1.EventList, now time.Time) string {
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", sa.Name)
	w.write(0, "Namespace:\t%s\n", sa.Namespace)
	w.labels("", "Labels", sa.Labels)
	w.annotations("", "Annotations", sa.Annotations)
	var pull, mount, tok []string
	for _, s := range sa.ImagePullSecrets {
		pull = append(pull, s.Name)
	}
	for _, s := range sa.Secrets {
		mount = append(mount, s.Name)
	}
	for _, s := range tokens {
		tok = append(tok, s.Name)
	}
	// kubectl pads the three titles to one width itself, so that their
	// continuation lines line up under the names.
	const blank = "                   "
	for _, l := range []struct {
		title string
		names []string
	}{
		{"Image pull secrets:", pull},
		{"Mountable secrets: ", mount},
		{"Tokens:            ", tok},
	} {
		if len(l.names) == 0 {
			w.write(0, "%s\t<none>\n", l.title)
			continue
		}
		for i, n := range l.names {
			title := l.title
			if i > 0 {
				title = blank
			}
			w.write(0, "%s\t%s\n", title, n)
		}
	}
	w.events(events, now)
	return w.String()
}

// serviceAccountTokens are the token Secrets of a ServiceAccount among
// the service-account-token Secrets of its namespace.
func serviceAccountTokens(sa *corev1.ServiceAccount, secrets []corev1.Secret) []corev1.Secret {
	var out []corev1.Secret
	for _, s := range secrets {
		if s.Type == corev1.SecretTypeServiceAccountToken && s.Annotations[corev1.ServiceAccountNameKey] == sa.Name &&
			(s.Annotations[corev1.ServiceAccountUIDKey] == "" || s.Annotations[corev1.ServiceAccountUIDKey] == string(sa.UID)) {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return strings.Compare(out[i].Name, out[j].Name) < 0 })
	return out
}
