package ctl

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
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
	// Object is the document parsed loosely, for its apiVersion, kind,
	// name and namespace. The server decodes JSON strictly.
	Object *unstructured.Unstructured
	// Resource is the resource its kind belongs to; nil when Err is set.
	Resource *scheme.ResourceInfo
	// Err says why the document has no Resource: Skiff serves no such
	// kind. The verbs report it (kubectl's "resource mapping not found")
	// and go on with the other documents.
	Err error
}

// Where names the document for messages: `error when applying "web.yaml"
// (document 2, line 14)`.
func (d *Document) Where() string {
	if d.Source == "-" {
		return fmt.Sprintf("STDIN (document %d, line %d)", d.Index+1, d.Line)
	}
	return fmt.Sprintf("%q (document %d, line %d)", d.Source, d.Index+1, d.Line)
}

// ReadManifests reads every document of the given -f arguments: files,
// directories (their .yaml, .yml and .json files, recursively with
// recursive), and "-" for in. Documents come in file order. A document of
// a kind Skiff does not serve is returned with its Err set. Reading stops
// at a document that is not valid YAML or JSON (or a file that cannot be
// read), returning those before it and the error, so that a caller can
// act on the good ones first.
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
			return docs, fmt.Errorf("error reading %s: %w", doc.Where(), fileLines(err, c.line))
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(js); err != nil {
			return docs, fmt.Errorf("error reading %s: %w", doc.Where(), err)
		}
		if !obj.IsList() {
			doc.Object = obj
			doc.Resource, doc.Err = ResourceForKind(obj.GetAPIVersion(), obj.GetKind())
			docs = append(docs, doc)
			continue
		}
		list, err := obj.ToList()
		if err != nil {
			return docs, fmt.Errorf("error reading %s: %w", doc.Where(), err)
		}
		for i := range list.Items {
			d := doc
			d.Object = &list.Items[i]
			d.Resource, d.Err = ResourceForKind(d.Object.GetAPIVersion(), d.Object.GetKind())
			if d.Err != nil {
				d.Err = fmt.Errorf("items[%d]: %w", i, d.Err)
			}
			docs = append(docs, d)
		}
	}
	return docs, nil
}

// yamlLine finds the line numbers in the YAML parser's messages ("yaml:
// line 6: did not find expected key").
var yamlLine = regexp.MustCompile(`yaml: line (\d+):`)

// fileLines rewrites the line numbers of a YAML parser error, which count
// from the start of the document, into lines of the file, for a document
// that starts on the file's line first.
func fileLines(err error, first int) error {
	msg := yamlLine.ReplaceAllStringFunc(err.Error(), func(m string) string {
		n, _ := strconv.Atoi(yamlLine.FindStringSubmatch(m)[1])
		return fmt.Sprintf("yaml: line %d:", first+n-1)
	})
	return errors.New(msg)
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
// scheme.Resources; documents of one resource keep their order. The
// documents must all have a Resource.
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
