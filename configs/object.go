package configs

import (
	"fmt"
	"strings"
)

// object is one document being loaded: the typed resource, where it came
// from, and the line of each of its fields, so that every problem found
// later (defaults, validation, cross-references) still points at a line.
type object struct {
	kind      string
	namespace string // "" for cluster-scoped kinds
	name      string
	src       Source
	res       any  // *VIP, *Gateway, *Backend, *Route or *Policy
	hasSpec   bool // the document has a spec; without one the spec is not validated

	lines  map[string]int  // field path → line of its key (or value)
	failed map[string]bool // field paths whose value could not be decoded

	problems *Problems // where problems go (shared by the whole load)
	count    int       // problems recorded for this document
}

// maxProblems bounds the problems reported for one document: past it, the
// document is likely not a configuration at all.
const maxProblems = 100

func newObject(file string, line int, problems *Problems) *object {
	return &object{
		src:      Source{File: file, Line: line},
		lines:    map[string]int{},
		failed:   map[string]bool{},
		problems: problems,
	}
}

// add records a problem at an explicit line.
func (o *object) add(line int, path, msg string) {
	switch o.count++; {
	case o.count == maxProblems+1:
		line, path, msg = o.src.Line, "", fmt.Sprintf("more than %d problems in this document; fix these first", maxProblems)
	case o.count > maxProblems:
		return
	}
	*o.problems = append(*o.problems, Problem{
		File:      o.src.File,
		Line:      line,
		Kind:      o.kind,
		Namespace: o.namespace,
		Name:      o.name,
		Field:     path,
		Message:   msg,
	})
}

// errorf records a problem found after decoding, at the line of path (or of
// its nearest ancestor that the YAML spells out). A problem on a field
// whose value failed to decode is dropped: the decoder already said what
// is wrong with it, and "required" on top would only be noise.
func (o *object) errorf(path, format string, args ...any) {
	if o.underFailed(path) {
		return
	}
	o.add(o.line(path), path, fmt.Sprintf(format, args...))
}

// line returns the line of path, or of its nearest ancestor with one.
func (o *object) line(path string) int {
	for p := path; ; p = parentPath(p) {
		if l, ok := o.lines[p]; ok {
			return l
		}
		if p == "" {
			return o.src.Line
		}
	}
}

// present reports whether the YAML spells out path.
func (o *object) present(path string) bool {
	_, ok := o.lines[path]
	return ok
}

// underFailed reports whether path, or one of its ancestors, failed to
// decode.
func (o *object) underFailed(path string) bool {
	if len(o.failed) == 0 {
		return false
	}
	for p := path; ; p = parentPath(p) {
		if o.failed[p] {
			return true
		}
		if p == "" {
			return false
		}
	}
}

// id is the resource's display name: "namespace/name", or "name" for a
// cluster-scoped kind.
func (o *object) id() string { return qualified(o.namespace, o.name) }

func qualified(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// field joins a field path and a key: field("spec", "port") = "spec.port".
func field(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// index joins a field path and a list index: index("spec.rules", 2) =
// "spec.rules[2]".
func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// parentPath strips the last key or index from a field path.
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}
