package validation

import (
	"path"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateVolumes checks a pod's volumes and returns the set of their
// names, which the containers' volumeMounts refer to.
func validateVolumes(volumes []corev1.Volume, fldPath *field.Path) (sets.Set[string], field.ErrorList) {
	var errs field.ErrorList
	names := sets.New[string]()
	for i := range volumes {
		v, idx := &volumes[i], fldPath.Index(i)
		errs = append(errs, validateVolumeSource(&v.VolumeSource, idx)...)
		namePath := idx.Child("name")
		if v.Name == "" {
			errs = append(errs, field.Required(namePath, ""))
			continue
		}
		errs = append(errs, validateDNS1123Label(v.Name, namePath)...)
		if names.Has(v.Name) {
			errs = append(errs, field.Duplicate(namePath, v.Name))
		}
		names.Insert(v.Name)
	}
	return names, errs
}

// volumeSources returns the JSON names of the sources set in a volume
// ("emptyDir", "configMap"), in the order the API declares them. A
// VolumeSource is a union of pointers, one per kind of volume, so this is
// simply the list of pointers that are not nil.
func volumeSources(src *corev1.VolumeSource) []string {
	var names []string
	v := reflect.ValueOf(src).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			names = append(names, name)
		}
	}
	return names
}

var supportedHostPathTypes = []corev1.HostPathType{
	corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory,
	corev1.HostPathFileOrCreate, corev1.HostPathFile, corev1.HostPathSocket,
	corev1.HostPathCharDev, corev1.HostPathBlockDev,
}

// fileModeErrorMsg is Kubernetes' message for a file mode out of range.
const fileModeErrorMsg = "must be a number between 0 and 0777 (octal), both inclusive"

// validateVolumeSource requires exactly one source and checks the ones
// whose fields Skiff reads. Sources Skiff does not implement are still
// checked for the mistakes Kubernetes would refuse, since the manifest must
// stay valid for Kubernetes; Warnings reports them.
func validateVolumeSource(src *corev1.VolumeSource, fldPath *field.Path) field.ErrorList {
	sources := volumeSources(src)
	if len(sources) == 0 {
		return field.ErrorList{field.Required(fldPath, "must specify a volume type")}
	}
	var errs field.ErrorList
	for _, extra := range sources[1:] {
		errs = append(errs, field.Forbidden(fldPath.Child(extra), "may not specify more than 1 volume type"))
	}
	if e := src.EmptyDir; e != nil && e.SizeLimit != nil && e.SizeLimit.Sign() < 0 {
		errs = append(errs, field.Forbidden(fldPath.Child("emptyDir", "sizeLimit"), "SizeLimit field must be a valid resource quantity"))
	}
	if h := src.HostPath; h != nil {
		p := fldPath.Child("hostPath")
		if h.Path == "" {
			errs = append(errs, field.Required(p.Child("path"), ""))
		} else {
			errs = append(errs, validatePathNoBacksteps(h.Path, p.Child("path"))...)
		}
		if h.Type != nil && !slices.Contains(supportedHostPathTypes, *h.Type) {
			errs = append(errs, field.NotSupported(p.Child("type"), *h.Type, supportedHostPathTypes))
		}
	}
	if c := src.ConfigMap; c != nil {
		p := fldPath.Child("configMap")
		if c.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		}
		errs = append(errs, validateFileMode(c.DefaultMode, p.Child("defaultMode"))...)
		errs = append(errs, validateKeyToPaths(c.Items, p.Child("items"))...)
	}
	if s := src.Secret; s != nil {
		p := fldPath.Child("secret")
		if s.SecretName == "" {
			errs = append(errs, field.Required(p.Child("secretName"), ""))
		}
		errs = append(errs, validateFileMode(s.DefaultMode, p.Child("defaultMode"))...)
		errs = append(errs, validateKeyToPaths(s.Items, p.Child("items"))...)
	}
	if c := src.PersistentVolumeClaim; c != nil && c.ClaimName == "" {
		errs = append(errs, field.Required(fldPath.Child("persistentVolumeClaim", "claimName"), ""))
	}
	if d := src.DownwardAPI; d != nil {
		errs = append(errs, validateFileMode(d.DefaultMode, fldPath.Child("downwardAPI", "defaultMode"))...)
	}
	if p := src.Projected; p != nil {
		errs = append(errs, validateFileMode(p.DefaultMode, fldPath.Child("projected", "defaultMode"))...)
		errs = append(errs, validateProjectionSources(p, fldPath.Child("projected"))...)
	}
	return errs
}

// validateProjectionSources checks a projected volume's sources: the
// configMap and secret ones name their object and have valid items, and
// no two items of the volume, whichever their sources, have one path.
// The errors are Kubernetes': a clash is reported on the volume, with the
// later source's name (a downwardAPI item's path) as the value. Clashes
// with the keys of a whole ConfigMap or Secret, and "a" next to "a/b",
// only the kubelet can see.
func validateProjectionSources(p *corev1.ProjectedVolumeSource, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	paths := sets.New[string]()
	// seen records a path, and reports whether it was seen before.
	seen := func(path string) bool {
		if paths.Has(path) {
			return true
		}
		paths.Insert(path)
		return false
	}
	for i, src := range p.Sources {
		srcPath := fldPath.Child("sources").Index(i)
		if s := src.Secret; s != nil {
			sp := srcPath.Child("secret")
			if s.Name == "" {
				errs = append(errs, field.Required(sp.Child("name"), ""))
			}
			errs = append(errs, validateKeyToPaths(s.Items, sp.Child("items"))...)
			for _, it := range s.Items {
				if it.Path != "" && seen(it.Path) {
					errs = append(errs, field.Invalid(fldPath, s.Name, "conflicting duplicate paths"))
				}
			}
		}
		if c := src.ConfigMap; c != nil {
			cp := srcPath.Child("configMap")
			if c.Name == "" {
				errs = append(errs, field.Required(cp.Child("name"), ""))
			}
			errs = append(errs, validateKeyToPaths(c.Items, cp.Child("items"))...)
			for _, it := range c.Items {
				if it.Path != "" && seen(it.Path) {
					errs = append(errs, field.Invalid(fldPath, c.Name, "conflicting duplicate paths"))
				}
			}
		}
		if d := src.DownwardAPI; d != nil {
			for _, it := range d.Items {
				if it.Path != "" && seen(it.Path) {
					errs = append(errs, field.Invalid(fldPath, it.Path, "conflicting duplicate paths"))
				}
			}
		}
	}
	return errs
}

func validateFileMode(mode *int32, fldPath *field.Path) field.ErrorList {
	if mode != nil && (*mode < 0 || *mode > 0777) {
		return field.ErrorList{field.Invalid(fldPath, *mode, fileModeErrorMsg)}
	}
	return nil
}

// validateKeyToPaths checks the items of a configMap or secret volume:
// which keys to project, and to which relative paths.
func validateKeyToPaths(items []corev1.KeyToPath, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, item := range items {
		idx := fldPath.Index(i)
		if item.Key == "" {
			errs = append(errs, field.Required(idx.Child("key"), ""))
		}
		if item.Path == "" {
			errs = append(errs, field.Required(idx.Child("path"), ""))
		} else {
			errs = append(errs, validateLocalDescendingPath(item.Path, idx.Child("path"))...)
		}
		errs = append(errs, validateFileMode(item.Mode, idx.Child("mode"))...)
	}
	return errs
}

// validatePathNoBacksteps refuses ".." in a path, which could climb out of
// the directory the path is meant to stay in.
func validatePathNoBacksteps(p string, fldPath *field.Path) field.ErrorList {
	if slices.Contains(strings.Split(p, "/"), "..") {
		return field.ErrorList{field.Invalid(fldPath, p, "must not contain '..'")}
	}
	return nil
}

// validateLocalDescendingPath requires a relative path that stays below
// its starting directory.
func validateLocalDescendingPath(p string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if path.IsAbs(p) {
		errs = append(errs, field.Invalid(fldPath, p, "must be a relative path"))
	}
	return append(errs, validatePathNoBacksteps(p, fldPath)...)
}

var (
	supportedMountPropagations = []corev1.MountPropagationMode{corev1.MountPropagationBidirectional, corev1.MountPropagationHostToContainer, corev1.MountPropagationNone}
	supportedRecursiveReadOnly = []corev1.RecursiveReadOnlyMode{corev1.RecursiveReadOnlyDisabled, corev1.RecursiveReadOnlyIfPossible, corev1.RecursiveReadOnlyEnabled}
)

// validateVolumeMounts checks where a container mounts the pod's volumes:
// each mount names a volume of the pod and a distinct mount path.
func validateVolumeMounts(mounts []corev1.VolumeMount, volumes sets.Set[string], c *corev1.Container, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	mountPaths := sets.New[string]()
	for i, m := range mounts {
		idx := fldPath.Index(i)
		switch {
		case m.Name == "":
			errs = append(errs, field.Required(idx.Child("name"), ""))
		case !volumes.Has(m.Name):
			errs = append(errs, field.NotFound(idx.Child("name"), m.Name))
		}
		switch {
		case m.MountPath == "":
			errs = append(errs, field.Required(idx.Child("mountPath"), ""))
		case !path.IsAbs(m.MountPath):
			// Skiff's own rule: containers run on Linux, where a mount
			// point is an absolute path inside the container.
			errs = append(errs, field.Invalid(idx.Child("mountPath"), m.MountPath, "must be an absolute path"))
		}
		if mountPaths.Has(m.MountPath) {
			errs = append(errs, field.Invalid(idx.Child("mountPath"), m.MountPath, "must be unique"))
		}
		mountPaths.Insert(m.MountPath)
		if m.SubPath != "" {
			errs = append(errs, validateLocalDescendingPath(m.SubPath, idx.Child("subPath"))...)
		}
		if m.SubPathExpr != "" {
			if m.SubPath != "" {
				errs = append(errs, field.Invalid(idx.Child("subPathExpr"), m.SubPathExpr, "subPathExpr and subPath are mutually exclusive"))
			}
			errs = append(errs, validateLocalDescendingPath(m.SubPathExpr, idx.Child("subPathExpr"))...)
		}
		if p := m.MountPropagation; p != nil {
			switch {
			case !slices.Contains(supportedMountPropagations, *p):
				errs = append(errs, field.NotSupported(idx.Child("mountPropagation"), *p, supportedMountPropagations))
			case *p == corev1.MountPropagationBidirectional && !isPrivileged(c):
				// Mounts made inside the container appear on the host:
				// only a privileged container may do that.
				errs = append(errs, field.Forbidden(idx.Child("mountPropagation"), "Bidirectional mount propagation is available only to privileged containers"))
			}
		}
		if r := m.RecursiveReadOnly; r != nil {
			switch {
			case !slices.Contains(supportedRecursiveReadOnly, *r):
				errs = append(errs, field.NotSupported(idx.Child("recursiveReadOnly"), *r, supportedRecursiveReadOnly))
			case *r != corev1.RecursiveReadOnlyDisabled && !m.ReadOnly:
				errs = append(errs, field.Forbidden(idx.Child("recursiveReadOnly"), "may only be specified when readOnly is true"))
			}
		}
	}
	return errs
}

func isPrivileged(c *corev1.Container) bool {
	return c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged
}
