package printers

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffdev/skiff/internal/scheme"
)

// Options choose the columns of a table.
type Options struct {
	// Wide adds the columns of -o wide.
	Wide bool
	// WithNamespace adds a NAMESPACE column first (-A). It is ignored for
	// cluster-scoped resources, as kubectl does.
	WithNamespace bool
	// ShowLabels adds a LABELS column last (--show-labels).
	ShowLabels bool
	// WithKind writes names as "kind.group/name" ("deployment.apps/web"),
	// which kubectl does when one command prints several resource types.
	WithKind bool
}

// Table is a table as `get` prints it: the column headers and one row of
// cells per object.
type Table struct {
	Columns []string
	Rows    [][]string
}

// column describes one column of a resource's table.
type column struct {
	header string
	// wide columns are shown only with -o wide.
	wide bool
	// name marks the column that holds the object's name, which WithKind
	// prefixes with the kind.
	name bool
}

// printer knows one resource's columns and how to fill them. row returns
// a cell for every column, wide ones included; wide tells it whether the
// wide columns are shown, for the few cells that are shortened otherwise.
type printer struct {
	columns []column
	row     func(obj runtime.Object, wide bool, now time.Time) []string
}

// NewTable builds the table of objs, which must all be of one resource:
// typed objects (*corev1.Pod) or lists of them (*corev1.PodList). Ages are
// measured from now.
func NewTable(objs []runtime.Object, opts Options, now time.Time) (*Table, error) {
	items, err := flatten(objs)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return &Table{}, nil
	}
	info, err := scheme.ForObject(items[0])
	if err != nil {
		return nil, err
	}
	p, ok := tables[info.GroupResource()]
	if !ok {
		return nil, fmt.Errorf("no table columns for %s", info.GroupResource())
	}
	withNamespace := opts.WithNamespace && info.Namespaced

	t := &Table{}
	if withNamespace {
		t.Columns = append(t.Columns, "NAMESPACE")
	}
	for _, c := range p.columns {
		if !c.wide || opts.Wide {
			t.Columns = append(t.Columns, c.header)
		}
	}
	if opts.ShowLabels {
		t.Columns = append(t.Columns, "LABELS")
	}

	for _, obj := range items {
		if other, err := scheme.ForObject(obj); err != nil || other != info {
			return nil, fmt.Errorf("a table holds one resource: got %T among %s", obj, info.GroupResource())
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			return nil, err
		}
		cells := p.row(obj, opts.Wide, now)
		var row []string
		if withNamespace {
			row = append(row, m.GetNamespace())
		}
		for i, c := range p.columns {
			if c.wide && !opts.Wide {
				continue
			}
			cell := cells[i]
			if c.name && opts.WithKind {
				cell = QualifiedName(info, cell)
			}
			row = append(row, cell)
		}
		if opts.ShowLabels {
			row = append(row, labels.FormatLabels(m.GetLabels()))
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

// flatten replaces list objects by their items.
func flatten(objs []runtime.Object) ([]runtime.Object, error) {
	var out []runtime.Object
	for _, obj := range objs {
		if !meta.IsListType(obj) {
			out = append(out, obj)
			continue
		}
		items, err := meta.ExtractList(obj)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
	}
	return out, nil
}

// Layout of the columns, the same as kubectl's tab writer: a cell is
// padded to the width of the widest cell in its column plus three spaces,
// and a column is at least six characters wide. The last column is not
// padded.
const (
	minColumnWidth = 6
	columnPadding  = 3
)

// TableWriter writes tables with aligned columns. The rows of one Write
// are aligned with each other. It prints the header with the first rows
// it writes (never for an empty table) and remembers the width of every
// column, widening it when a later Write brings a longer cell: a later
// row, such as a change a watch reports, lines up under the earlier ones
// as long as its cells fit in their widths; a longer cell pushes the rest
// of its row (and widens the column for later rows), since rows already
// printed cannot be redone. Write everything known at once, as one table,
// to align it whole. Use a new TableWriter for a table with other
// columns.
type TableWriter struct {
	out io.Writer
	// NoHeaders leaves the header out (--no-headers).
	NoHeaders bool

	widths      []int
	wroteHeader bool
}

// NewTableWriter returns a TableWriter that writes to out.
func NewTableWriter(out io.Writer) *TableWriter {
	return &TableWriter{out: out}
}

// Write writes t's rows, preceded by its header if this is the first
// time rows are written.
func (w *TableWriter) Write(t *Table) error {
	if len(t.Rows) == 0 {
		return nil
	}
	lines := make([][]string, 0, len(t.Rows)+1)
	if !w.wroteHeader && !w.NoHeaders {
		lines = append(lines, t.Columns)
	}
	for _, r := range t.Rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = sanitize(c)
		}
		lines = append(lines, cells)
	}
	w.wroteHeader = true

	for _, l := range lines {
		for i := 0; i < len(l)-1; i++ {
			for len(w.widths) <= i {
				w.widths = append(w.widths, minColumnWidth)
			}
			w.widths[i] = max(w.widths[i], utf8.RuneCountInString(l[i])+columnPadding)
		}
	}
	var buf bytes.Buffer
	for _, l := range lines {
		for i, cell := range l {
			buf.WriteString(cell)
			if i < len(l)-1 {
				buf.WriteString(strings.Repeat(" ", w.widths[i]-utf8.RuneCountInString(cell)))
			}
		}
		buf.WriteByte('\n')
	}
	_, err := w.out.Write(buf.Bytes())
	return err
}

// sanitize keeps a cell on one line, as kubectl does: a cell is cut at
// its first line break (marked "..."), and escape characters, which could
// drive the terminal, are shown as "^[".
func sanitize(cell string) string {
	if i := strings.IndexAny(cell, "\f\n\r"); i >= 0 {
		cell = cell[:i] + "..."
	}
	return strings.ReplaceAll(cell, "\x1b", "^[")
}
