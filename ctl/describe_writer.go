package ctl

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// This file holds describeWriter, which lays out describe's text, and the
// small formats that every description shares.

// describeWriter writes describe's "Key:<TAB>value" lines, indented two
// spaces a level, into a tab writer that aligns each run of lines, with
// kubectl's layout (no minimum width, two spaces of padding).
type describeWriter struct {
	buf bytes.Buffer
	tw  *tabwriter.Writer
}

func newDescribeWriter() *describeWriter {
	w := &describeWriter{}
	w.tw = tabwriter.NewWriter(&w.buf, 0, 8, 2, ' ', 0)
	return w
}

// terminalEscaper keeps text from the cluster from driving the terminal.
var terminalEscaper = strings.NewReplacer("\x1b", "^[", "\r", `\r`)

// write writes format at the given indentation level.
func (w *describeWriter) write(level int, format string, args ...any) {
	s := strings.Repeat("  ", level) + fmt.Sprintf(format, args...)
	terminalEscaper.WriteString(w.tw, s)
}

// String flushes the tab writer and returns the text.
func (w *describeWriter) String() string {
	w.tw.Flush()
	return w.buf.String()
}

// rfc1123 is how describe writes times.
func rfc1123(t metav1.Time) string { return t.Time.Format(time.RFC1123Z) }

// multiline writes "title:<TAB>first" and then one value a line, aligned
// under the first, or "<none>" when there are no values. indent goes
// before the title and before each continued line.
func (w *describeWriter) multiline(indent, title string, values []string) {
	w.write(0, "%s%s:\t", indent, title)
	if len(values) == 0 {
		w.write(0, "<none>\n")
		return
	}
	for i, v := range values {
		if i > 0 {
			w.write(0, "%s\t", indent)
		}
		w.write(0, "%s\n", v)
	}
}

// labels writes a map's "key=value" pairs sorted, one a line.
func (w *describeWriter) labels(indent, title string, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = k + "=" + m[k]
	}
	w.multiline(indent, title, values)
}

// maxAnnotationLen is the longest "key: value" annotation line describe
// prints whole; longer values go on their own shortened lines.
const maxAnnotationLen = 140

// annotations writes the annotations, sorted, leaving out the copy of the
// manifest that apply keeps (long, and shown by get -o yaml).
func (w *describeWriter) annotations(indent, title string, m map[string]string) {
	w.write(0, "%s%s:\t", indent, title)
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != corev1.LastAppliedConfigAnnotation {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		w.write(0, "<none>\n")
		return
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			w.write(0, "%s\t", indent)
		}
		v := strings.TrimSuffix(m[k], "\n")
		if len(k)+len(v)+2 <= maxAnnotationLen && !strings.Contains(v, "\n") {
			w.write(0, "%s: %s\n", k, v)
			continue
		}
		w.write(0, "%s:\n", k)
		for _, line := range strings.Split(v, "\n") {
			if len(line) > maxAnnotationLen-2 {
				line = line[:maxAnnotationLen-2] + "..."
			}
			w.write(0, "%s\t  %s\n", indent, line)
		}
	}
}

// tolerations writes a pod's tolerations as "key=value:Effect op=Exists
// for 300s", sorted by key.
func (w *describeWriter) tolerations(indent string, ts []corev1.Toleration) {
	ts = append([]corev1.Toleration(nil), ts...)
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].Key < ts[j].Key })
	values := make([]string, len(ts))
	for i, t := range ts {
		s := t.Key
		if t.Value != "" {
			s += "=" + t.Value
		}
		if t.Effect != "" {
			s += ":" + string(t.Effect)
		}
		if t.Operator == corev1.TolerationOpExists && t.Value == "" {
			if t.Key != "" || t.Effect != "" {
				s += " "
			}
			s += "op=Exists"
		}
		if t.TolerationSeconds != nil {
			s += fmt.Sprintf(" for %ds", *t.TolerationSeconds)
		}
		values[i] = s
	}
	w.multiline(indent, "Tolerations", values)
}

func controllerName(m metav1.Object) string {
	if ref := metav1.GetControllerOf(m); ref != nil {
		return ref.Kind + "/" + ref.Name
	}
	return ""
}

func boolWord(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func sortedResourceNames(l corev1.ResourceList) []corev1.ResourceName {
	names := make([]corev1.ResourceName, 0, len(l))
	for n := range l {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return names[i] < names[j] })
	return names
}
