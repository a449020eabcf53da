package apiserver

import (
	"testing"

	"github.com/skiffdev/skiff/internal/scheme"
)

// TestEncryptedResourcesAreServed: every resource encryptedResources
// names is one the registry has a store for, so that none is left in the
// clear by a typo.
func TestEncryptedResourcesAreServed(t *testing.T) {
	for _, gr := range encryptedResources {
		if _, ok := scheme.Lookup(gr); !ok {
			t.Errorf("encryptedResources names %s, which Skiff does not serve", gr)
		}
	}
}
