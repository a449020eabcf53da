package printers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/skiffdev/skiff/internal/scheme"
)

// PrintJSON writes objects (lists count as their items) as `kubectl get
// -o json` does: with asList false and one object, that object; otherwise a "kind: List" of apiVersion
// v1 holding them as items. Keys are sorted and indented by four spaces.
func PrintJSON(w io.Writer, objs []runtime.Object, asList bool) error {
	doc, err := document(objs, asList)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(doc, "", "    ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}

// PrintYAML is PrintJSON for -o yaml.
func PrintYAML(w io.Writer, objs []runtime.Object, asList bool) error {
	doc, err := document(objs, asList)
	if err != nil {
		return err
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// document is what PrintJSON and PrintYAML encode: one object, or a List
// of them, as generic JSON values, so that keys come out sorted as they do
// from kubectl (which prints objects as it decoded them, into maps).
func document(objs []runtime.Object, asList bool) (any, error) {
	objs, err := flatten(objs)
	if err != nil {
		return nil, err
	}
	if !asList && len(objs) == 1 {
		return genericValue(objs[0])
	}
	items := []any{}
	for _, obj := range objs {
		v, err := genericValue(obj)
		if err != nil {
			return nil, err
		}
		items = append(items, v)
	}
	return map[string]any{
		"apiVersion": "v1",
		"kind":       "List",
		"items":      items,
		"metadata":   map[string]any{"resourceVersion": ""},
	}, nil
}

// genericValue converts a typed object to maps and slices, with its
// apiVersion and kind set (items of a list arrive without them) and
// without managedFields, which kubectl hides by default.
func genericValue(obj runtime.Object) (any, error) {
	obj = obj.DeepCopyObject()
	if err := scheme.SetTypeMeta(obj); err != nil {
		return nil, err
	}
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keep large integers exact
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// QualifiedKind is how kubectl names a resource type in messages:
// its singular name, with its group unless it is the core group ("pod",
// "deployment.apps").
func QualifiedKind(r *scheme.ResourceInfo) string {
	if r.Group == "" {
		return r.Singular
	}
	return r.Singular + "." + r.Group
}

// QualifiedName is how kubectl names one object when the type must be
// said: in -o name, in apply's "deployment.apps/web configured", and in
// the NAME column when a table shows several types ("pod/web-1",
// "deployment.apps/web").
func QualifiedName(r *scheme.ResourceInfo, name string) string {
	return QualifiedKind(r) + "/" + name
}

// PrintNames writes the qualified name of each object (see
// QualifiedName) on its own line, as -o name does.
func PrintNames(w io.Writer, objs []runtime.Object) error {
	items, err := flatten(objs)
	if err != nil {
		return err
	}
	for _, obj := range items {
		info, err := scheme.ForObject(obj)
		if err != nil {
			return err
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintln(w, QualifiedName(info, m.GetName())); err != nil {
			return err
		}
	}
	return nil
}
