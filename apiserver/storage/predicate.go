package storage

import (
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// AttrFunc returns what selectors match against: the object's labels, and
// the fields a field selector may name (at least metadata.name and
// metadata.namespace).
type AttrFunc func(obj runtime.Object) (labels.Set, fields.Set)

// Predicate is a label selector and a field selector; nil selectors match
// everything.
type Predicate struct {
	Label labels.Selector
	Field fields.Selector
}

// Empty reports whether the predicate matches every object.
func (p Predicate) Empty() bool {
	return (p.Label == nil || p.Label.Empty()) && (p.Field == nil || p.Field.Empty())
}

// Matches reports whether obj is selected.
func (p Predicate) Matches(obj runtime.Object, attrs AttrFunc) bool {
	if p.Empty() {
		return true
	}
	l, f := attrs(obj)
	return p.MatchesAttrs(l, f)
}

// MatchesAttrs is Matches with the attributes already computed.
func (p Predicate) MatchesAttrs(l labels.Set, f fields.Set) bool {
	if p.Label != nil && !p.Label.Empty() && !p.Label.Matches(l) {
		return false
	}
	if p.Field != nil && !p.Field.Empty() && !p.Field.Matches(f) {
		return false
	}
	return true
}
