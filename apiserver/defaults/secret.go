package defaults

import corev1 "k8s.io/api/core/v1"

// DefaultSecret merges stringData into data, as Kubernetes does on every
// write (a key in both takes stringData's value), clears stringData, and
// makes an untyped Secret Opaque.
func DefaultSecret(s *corev1.Secret) {
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	if len(s.StringData) > 0 && s.Data == nil {
		s.Data = make(map[string][]byte, len(s.StringData))
	}
	for k, v := range s.StringData {
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
}
