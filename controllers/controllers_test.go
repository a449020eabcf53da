package controllers

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestREADMEListsEveryController keeps README.md true: its table of the
// controllers has one row for each row of all, in the same order.
func TestREADMEListsEveryController(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, found := strings.Cut(string(data), "\n## The controllers\n")
	if !found {
		t.Fatal(`README.md has no section "## The controllers"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var listed []string
	for line := range strings.SplitSeq(section, "\n") {
		if rest, ok := strings.CutPrefix(line, "| `"); ok {
			name, _, _ := strings.Cut(rest, "`")
			listed = append(listed, name)
		}
	}
	var names []string
	for _, e := range all {
		names = append(names, e.name)
	}
	if !slices.Equal(listed, names) {
		t.Errorf("README.md lists %v, want %v", listed, names)
	}
	slices.Sort(names)
	if len(slices.Compact(names)) != len(all) {
		t.Errorf("two controllers have the same name: %v", names)
	}
}
