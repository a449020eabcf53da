package validation

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// MaxConfigSize is the most data a ConfigMap or a Secret may hold, keys
// and values together: 1 MiB, Kubernetes' limit (corev1.MaxSecretSize),
// which keeps every object well under etcd's request size.
const MaxConfigSize = corev1.MaxSecretSize

// redacted stands for a secret's value in an error message: the value
// itself never appears in one.
const redacted = "<secret contents redacted>"

var (
	dataPath       = field.NewPath("data")
	binaryDataPath = field.NewPath("binaryData")
	immutablePath  = field.NewPath("immutable")
)

// immutableMsg is Kubernetes' message for a change to an immutable
// ConfigMap's or Secret's data.
const immutableMsg = "field is immutable when `immutable` is set"

// validateConfigMap checks a new ConfigMap: its keys, that data and
// binaryData share none, and its size.
func validateConfigMap(cm *corev1.ConfigMap) field.ErrorList {
	errs := validateObjectMeta(&cm.ObjectMeta, true, nameIsDNSSubdomain)
	size := 0
	for key, value := range cm.Data {
		size += len(key) + len(value)
		errs = append(errs, invalidEach(dataPath.Key(key), key, utilvalidation.IsConfigMapKey(key))...)
	}
	for key, value := range cm.BinaryData {
		size += len(key) + len(value)
		errs = append(errs, invalidEach(binaryDataPath.Key(key), key, utilvalidation.IsConfigMapKey(key))...)
		if _, dup := cm.Data[key]; dup {
			errs = append(errs, field.Invalid(binaryDataPath.Key(key), key, "duplicate of key present in data"))
		}
	}
	if size > MaxConfigSize {
		errs = append(errs, field.TooLong(field.NewPath(""), "", MaxConfigSize)) // "[]: Too long", as Kubernetes says it
	}
	return errs
}

// validateConfigMapUpdate checks an update: an immutable ConfigMap keeps
// its data and stays immutable.
func validateConfigMapUpdate(cm, old *corev1.ConfigMap) field.ErrorList {
	errs := validateConfigMap(cm)
	errs = append(errs, validateObjectMetaUpdate(&cm.ObjectMeta, &old.ObjectMeta)...)
	if isTrue(old.Immutable) {
		if !isTrue(cm.Immutable) {
			errs = append(errs, field.Forbidden(immutablePath, immutableMsg))
		}
		if !reflect.DeepEqual(cm.Data, old.Data) {
			errs = append(errs, field.Forbidden(dataPath, immutableMsg))
		}
		if !reflect.DeepEqual(cm.BinaryData, old.BinaryData) {
			errs = append(errs, field.Forbidden(binaryDataPath, immutableMsg))
		}
	}
	return errs
}

// validateSecret checks a new Secret (stringData already merged into
// data): its keys, its size, and the keys its type requires.
func validateSecret(s *corev1.Secret) field.ErrorList {
	errs := validateObjectMeta(&s.ObjectMeta, true, nameIsDNSSubdomain)
	size := 0
	for key, value := range s.Data {
		size += len(value)
		errs = append(errs, invalidEach(dataPath.Key(key), key, utilvalidation.IsConfigMapKey(key))...)
	}
	if size > MaxConfigSize {
		errs = append(errs, field.TooLong(dataPath, "", MaxConfigSize))
	}
	require := func(keys ...string) {
		for _, k := range keys {
			if _, ok := s.Data[k]; !ok {
				errs = append(errs, field.Required(dataPath.Key(k), ""))
			}
		}
	}
	// json checks that the value under key, if any, is JSON.
	json := func(key string) {
		if v, ok := s.Data[key]; ok {
			var any map[string]any
			if err := json.Unmarshal(v, &any); err != nil {
				errs = append(errs, field.Invalid(dataPath.Key(key), redacted, jsonErrorDetail(err)))
			}
		}
	}
	switch s.Type {
	case corev1.SecretTypeServiceAccountToken:
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			errs = append(errs, field.Required(field.NewPath("metadata", "annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeDockercfg:
		require(corev1.DockerConfigKey)
		json(corev1.DockerConfigKey)
	case corev1.SecretTypeDockerConfigJson:
		require(corev1.DockerConfigJsonKey)
		json(corev1.DockerConfigJsonKey)
	case corev1.SecretTypeBasicAuth:
		// Either of the two will do; with neither, both are named.
		_, user := s.Data[corev1.BasicAuthUsernameKey]
		_, password := s.Data[corev1.BasicAuthPasswordKey]
		if !user && !password {
			require(corev1.BasicAuthUsernameKey, corev1.BasicAuthPasswordKey)
		}
	case corev1.SecretTypeSSHAuth:
		require(corev1.SSHAuthPrivateKey)
	case corev1.SecretTypeTLS:
		require(corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	}
	return errs
}

// validateSecretUpdate checks an update: the type never changes, and an
// immutable Secret keeps its data and stays immutable.
func validateSecretUpdate(s, old *corev1.Secret) field.ErrorList {
	errs := validateSecret(s)
	errs = append(errs, validateObjectMetaUpdate(&s.ObjectMeta, &old.ObjectMeta)...)
	errs = append(errs, validateImmutable(s.Type, old.Type, field.NewPath("type"))...)
	if isTrue(old.Immutable) {
		if !isTrue(s.Immutable) {
			errs = append(errs, field.Forbidden(immutablePath, immutableMsg))
		}
		if !reflect.DeepEqual(s.Data, old.Data) {
			errs = append(errs, field.Forbidden(dataPath, immutableMsg))
		}
	}
	return errs
}

// validateServiceAccount checks a ServiceAccount: its name, and the names
// of the secrets it lists.
func validateServiceAccount(sa *corev1.ServiceAccount) field.ErrorList {
	errs := validateObjectMeta(&sa.ObjectMeta, true, nameIsDNSSubdomain)
	for i, ref := range sa.ImagePullSecrets {
		errs = append(errs, invalidEach(field.NewPath("imagePullSecrets").Index(i).Child("name"), ref.Name, nameIsDNSSubdomain(ref.Name, false))...)
	}
	return errs
}

func validateServiceAccountUpdate(sa, old *corev1.ServiceAccount) field.ErrorList {
	errs := validateServiceAccount(sa)
	return append(errs, validateObjectMetaUpdate(&sa.ObjectMeta, &old.ObjectMeta)...)
}

func isTrue(b *bool) bool { return b != nil && *b }

// jsonErrorDetail says what is wrong with a secret's JSON without quoting
// any of it: encoding/json's messages include the offending character.
func jsonErrorDetail(err error) string {
	const truncated = "unexpected end of JSON input" // quotes nothing
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err.Error() == truncated:
		return truncated
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return "must be a JSON object"
	}
	return "invalid JSON"
}
