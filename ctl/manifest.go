package ctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/skiffdev/skiff/internal/scheme"
)

// Document is one object read from a manifest.
type Document struct {
	// Source names where it came from: the file ("-" for standard input).
	Source string
	// Index is the document's position in its file, from 0.
	Index int
	// Line is the line of the file the document starts on, from 1.
	Line int
	// JSON is the document as JSON, exactly as written (no defaults).
	JSON []byte
	// Object is the document parsed loosely, for its apiVersion, kind,
	// name and namespace. The server decodes JSON strictly.
	Object *unstructured.Unstructured
	// Resource is the resource its kind belongs to.
	Resource *scheme.ResourceInfo
}

// Where names the document for messages: `error when applying "web.yaml"
// (document 2, line 14)`.
func (d *Document) Where() string {
	if d.Source == "-" {
		return fmt.Sprintf("STDIN (document %d, line %d)", d.Index+1, d.Line)
	}
	return fmt.Sprintf("%q (document %d, line %d)", d.Source, d.Index+1, d.Line)
}

// DocumentError is a document that could not be read.
type DocumentError struct {
	Doc Document
	Err error
}

func (e *DocumentError) Error() string {
	return fmt.Sprintf("error reading %s: %v", e.Doc.Where(), e.Err)
}
func (e *DocumentError) Unwrap() error { return e.Err }

// ReadManifests reads every document of the given -f arguments: files,
// directories (their .yaml, .yml and .json files, recursively with
// recursive), and "-" for in. Documents come in file order. Reading stops
// at the first bad document, returning those before it and the error, so
// that a caller can act on the good ones first.
func ReadManifests(paths []string, recursive bool, in io.Reader) ([]Document, error) {
	var docs []Document
	for _, p := range paths {
		files, err := expand(p, recursive)
		if err != nil {
			return docs, err
		}
		for _, f := range files {
			var data []byte
			if f == "-" {
				data, err = io.ReadAll(in)
			} else {
				data, err = os.ReadFile(f)
			}
			if err != nil {
				return docs, fmt.Errorf("error reading %q: %w", f, err)
			}
			got, err := splitDocuments(f, data)
			docs = append(docs, got...)
			if err != nil {
				return docs, err
			}
		}
	}
	if len(docs) == 0 {
		return nil, errors.New("no objects passed to the command")
	}
	return docs, nil
}

// expand turns one -f argument into files.
func expand(p string, recursive bool) ([]string, error) {
	if p == "-" {
		return []string{"-"}, nil
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("the path %q does not exist", p)
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	var files []string
	err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != p && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml", ".json":
			files = append(files, path)
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

// chunk is one document's raw text and the line it starts on.
type chunk struct {
	text []byte
	line int
}

// splitChunks splits a YAML stream at its "---" lines, remembering where
// each document starts so that errors can name the line.
func splitChunks(data []byte) []chunk {
	var chunks []chunk
	lines := bytes.SplitAfter(data, []byte("\n"))
	cur := chunk{line: 1}
	for i, l := range lines {
		t := bytes.TrimRight(l, " \t\r\n")
		if bytes.Equal(t, []byte("---")) || bytes.HasPrefix(t, []byte("--- ")) {
			chunks = append(chunks, cur)
			cur = chunk{line: i + 2}
			continue
		}
		cur.text = append(cur.text, l...)
	}
	return append(chunks, cur)
}

// splitDocuments splits a YAML or JSON stream into documents, unpacking
// "kind: List".
func splitDocuments(source string, data []byte) ([]Document, error) {
	var docs []Document
	index := 0
	for _, c := range splitChunks(data) {
		if len(bytes.TrimSpace(stripComments(c.text))) == 0 {
			continue
		}
		doc := Document{Source: source, Index: index, Line: c.line + leadingBlankLines(c.text)}
		index++
		js, err := yaml.YAMLToJSON(c.text)
		if err != nil {
			return docs, &DocumentError{Doc: doc, Err: err}
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(js); err != nil {
			return docs, &DocumentError{Doc: doc, Err: err}
		}
		if obj.IsList() {
			list, err := obj.ToList()
			if err != nil {
				return docs, &DocumentError{Doc: doc, Err: err}
			}
			for i := range list.Items {
				item := list.Items[i]
				ij, err := json.Marshal(item.Object)
				if err != nil {
					return docs, &DocumentError{Doc: doc, Err: err}
				}
				d := doc
				d.JSON, d.Object = ij, &item
				if d.Resource, err = ResourceForKind(item.GetAPIVersion(), item.GetKind()); err != nil {
					return docs, &DocumentError{Doc: d, Err: fmt.Errorf("items[%d]: %w", i, err)}
				}
				docs = append(docs, d)
			}
			continue
		}
		doc.JSON, doc.Object = js, obj
		if doc.Resource, err = ResourceForKind(obj.GetAPIVersion(), obj.GetKind()); err != nil {
			return docs, &DocumentError{Doc: doc, Err: err}
		}
		docs = append(docs, doc)
	}
	return docs, nil
}

func leadingBlankLines(raw []byte) int {
	n := 0
	for _, l := range bytes.Split(raw, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) != 0 && t[0] != '#' {
			break
		}
		n++
	}
	return n
}

func stripComments(raw []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(raw, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] == '#' {
			continue
		}
		out = append(out, l)
	}
	return bytes.Join(out, []byte("\n"))
}

// applyOrder sorts documents so that what others depend on comes first:
// namespaces, then services, then workloads, in the order of
// scheme.Resources; documents of one resource keep their order.
func applyOrder(docs []Document) []Document {
	rank := map[string]int{}
	for i, r := range scheme.Resources {
		rank[r.GroupResource().String()] = i
	}
	out := append([]Document(nil), docs...)
	sort.SliceStable(out, func(i, j int) bool {
		return rank[out[i].Resource.GroupResource().String()] < rank[out[j].Resource.GroupResource().String()]
	})
	return out
}
