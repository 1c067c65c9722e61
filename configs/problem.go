package configs

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration: where it is (file and
// line), which resource it belongs to (when the document says), which
// field, and what is wrong.
type Problem struct {
	File      string
	Line      int // 1-based; 0 when unknown
	Kind      string
	Namespace string // empty for cluster-scoped kinds
	Name      string
	Field     string // field path, "spec.listeners[1].port"; empty for the whole document
	Message   string
}

// String formats the problem on one line:
//
//	routes.yaml:23: ProxyRoute api-system/users-route: spec.rules[0].backendRefs[0].name: no ProxyBackend "users-backendX" in namespace "api-system"
func (p Problem) String() string {
	var parts []string
	if loc := p.File; loc != "" || p.Line > 0 {
		if p.Line > 0 {
			loc += ":" + strconv.Itoa(p.Line)
		}
		parts = append(parts, loc)
	}
	if p.Kind != "" {
		who := p.Kind
		switch {
		case p.Name != "" && p.Namespace != "":
			who += " " + p.Namespace + "/" + p.Name
		case p.Name != "":
			who += " " + p.Name
		}
		parts = append(parts, who)
	}
	if p.Field != "" {
		parts = append(parts, p.Field)
	}
	parts = append(parts, p.Message)
	return strings.Join(parts, ": ")
}

// Problems is every problem found in a configuration, sorted by file and
// line. It is the error Load and LoadFiles return.
type Problems []Problem

// Error lists every problem, one per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sorted returns the problems sorted by file and line (keeping the order in
// which they were found within a line), without exact repeats. A YAML alias
// can make the decoder visit the same node twice; its problems are
// reported once.
func (ps Problems) sorted() Problems {
	out := slices.Clone(ps)
	slices.SortStableFunc(out, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
	seen := make(map[Problem]bool, len(out))
	return slices.DeleteFunc(out, func(p Problem) bool {
		dup := seen[p]
		seen[p] = true
		return dup
	})
}

var _ error = Problems(nil)
