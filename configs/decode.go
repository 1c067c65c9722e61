package configs

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// The decoder turns a *yaml.Node into the typed resource structs, strictly:
// every key must be a field (its `json` tag), every value must have the
// field's type, and every problem is recorded with its field path and line
// before decoding carries on. It never stops at the first problem.

const (
	// maxValues bounds the values decoded from one document, counting
	// every expansion of an alias, so that a "billion laughs" document
	// cannot exhaust memory.
	maxValues = 1 << 18
	// maxDepth bounds the nesting of free-form values (a Wasm plugin's
	// config) and of merge keys.
	maxDepth = 64
)

var (
	durationType = reflect.TypeFor[Duration]()
	sizeType     = reflect.TypeFor[Size]()
)

// YAML tags, as yaml.Node.ShortTag reports them.
const (
	tagNull      = "!!null"
	tagBool      = "!!bool"
	tagInt       = "!!int"
	tagFloat     = "!!float"
	tagStr       = "!!str"
	tagTimestamp = "!!timestamp"
	tagMerge     = "!!merge"
)

type decoder struct {
	o      *object
	budget int  // values left to decode
	stop   bool // the document is too large or too deep: decode no more
}

func newDecoder(o *object) *decoder { return &decoder{o: o, budget: maxValues} }

// fail records a problem with the value at path, and remembers that the
// value is missing so that validation does not complain about it again.
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.o.failed[path] = true
	msg := fmt.Sprintf(format, args...)
	if secretField(d.o.kind, path) {
		msg = hideValue(msg, n.Value) // a secret in the wrong shape is still a secret
	}
	d.o.add(n.Line, path, msg)
}

// spend takes one value from the budget; false means stop decoding.
func (d *decoder) spend(n *yaml.Node, path string) bool {
	switch {
	case d.stop:
		return false
	case d.budget > 0:
		d.budget--
		return true
	}
	d.stop = true
	d.fail(n, path, "document too large: more than %d values (counting every use of an alias)", maxValues)
	return false
}

// decode decodes n into v, whose field path is path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if !d.spend(n, path) {
		return
	}
	if _, ok := d.o.lines[path]; !ok {
		d.o.lines[path] = n.Line
	}
	n = deref(n)
	if isNull(n) {
		return // null leaves the field unset
	}
	for v.Kind() == reflect.Pointer {
		p := reflect.New(v.Type().Elem())
		v.Set(p)
		v = p.Elem()
	}
	switch v.Type() {
	case durationType:
		d.duration(n, v, path)
		return
	case sizeType:
		d.size(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Slice:
		d.list(n, v, path)
	case reflect.Map:
		d.mapping(n, v, path)
	case reflect.Interface:
		if x := d.free(n, path, 0); x != nil {
			v.Set(reflect.ValueOf(x))
		}
	case reflect.String:
		d.str(n, v, path)
	case reflect.Bool:
		d.boolean(n, v, path)
	case reflect.Int, reflect.Int64:
		d.integer(n, v, path)
	case reflect.Float64:
		d.float(n, v, path)
	default:
		d.fail(n, path, "internal error: cannot decode into %s", v.Type())
	}
}

// structure decodes a mapping into a struct, key by key.
func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected mapping, got %s", describe(n))
		return
	}
	fs := fieldsOf(v.Type())
	child := func(key string) string { return field(path, key) }
	pairs := d.pairs(n, path, child, 0)
	// A misspelt key is a typo of a field not written already.
	var unwritten []string
	for _, name := range fs.names {
		if !slices.ContainsFunc(pairs, func(p pair) bool { return p.key.Value == name }) {
			unwritten = append(unwritten, name)
		}
	}
	for _, p := range pairs {
		key := p.key.Value
		i, ok := fs.index[key]
		if !ok {
			msg := fmt.Sprintf("unknown field %q (allowed: %s)", clip(key), strings.Join(fs.names, ", "))
			if s := suggest(key, unwritten); s != "" {
				msg = fmt.Sprintf("unknown field %q; did you mean %q?", clip(key), s)
				// The field is there, misspelt: do not also call it missing.
				d.o.failed[child(s)] = true
			}
			d.o.add(p.key.Line, child(key), msg)
			continue
		}
		d.o.lines[child(key)] = p.key.Line
		d.decode(p.value, v.Field(i), child(key))
	}
}

// list decodes a sequence into a slice.
func (d *decoder) list(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		msg := "expected list, got " + describe(n)
		if n.Kind == yaml.ScalarNode && n.ShortTag() == tagStr {
			msg += fmt.Sprintf(" (for a single item, write [%s])", strconv.Quote(clip(n.Value)))
		}
		d.fail(n, path, "%s", msg)
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, c := range n.Content {
		d.decode(c, s.Index(i), index(path, i))
	}
	v.Set(s)
}

// mapping decodes a mapping into a map with string keys (labels,
// annotations).
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected mapping, got %s", describe(n))
		return
	}
	t := v.Type()
	m := reflect.MakeMapWithSize(t, len(n.Content)/2)
	child := func(key string) string { return mapKey(path, key) }
	for _, p := range d.pairs(n, path, child, 0) {
		key := p.key.Value
		e := reflect.New(t.Elem()).Elem()
		d.o.lines[child(key)] = p.key.Line
		d.decode(p.value, e, child(key))
		m.SetMapIndex(reflect.ValueOf(key).Convert(t.Key()), e)
	}
	v.Set(m)
}

// free decodes a free-form value (a Wasm plugin's config) into plain
// map[string]any, []any and scalars that encoding/json can write back.
func (d *decoder) free(n *yaml.Node, path string, depth int) any {
	if depth > 0 && !d.spend(n, path) {
		return nil
	}
	n = deref(n)
	if depth > maxDepth {
		d.stop = true // an alias may nest a value in itself: say so once
		d.fail(n, path, "nested more than %d levels deep", maxDepth)
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		child := func(key string) string { return mapKey(path, key) }
		m := map[string]any{}
		for _, p := range d.pairs(n, path, child, 0) {
			m[p.key.Value] = d.free(p.value, child(p.key.Value), depth+1)
		}
		return m
	case yaml.SequenceNode:
		l := make([]any, len(n.Content))
		for i, c := range n.Content {
			l[i] = d.free(c, index(path, i), depth+1)
		}
		return l
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case tagNull:
			return nil
		case tagStr, tagTimestamp, tagMerge:
			return n.Value
		case tagBool:
			var b bool
			if err := n.Decode(&b); err == nil {
				return b
			}
		case tagInt:
			var i int64
			if err := n.Decode(&i); err == nil {
				return i
			}
			var u uint64
			if err := n.Decode(&u); err == nil {
				return u
			}
			d.fail(n, path, "integer %s is out of range", clip(n.Value))
			return nil
		case tagFloat:
			var f float64
			if err := n.Decode(&f); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
				return f
			}
			d.fail(n, path, "%s is not a finite number (JSON cannot carry it)", clip(n.Value))
			return nil
		}
	}
	d.fail(n, path, "unsupported value: %s", describe(n))
	return nil
}

// str decodes a string. Numbers and booleans are not strings: a quoted
// value says what was meant.
func (d *decoder) str(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case tagStr, tagTimestamp, tagMerge:
			v.SetString(n.Value)
			return
		case tagInt, tagFloat, tagBool:
			d.fail(n, path, "expected string, got %s (write %q if a string is meant)", describe(n), n.Value)
			return
		}
	}
	d.fail(n, path, "expected string, got %s", describe(n))
}

func (d *decoder) boolean(n *yaml.Node, v reflect.Value, path string) {
	var b bool
	if n.Kind == yaml.ScalarNode && n.ShortTag() == tagBool && n.Decode(&b) == nil {
		v.SetBool(b)
		return
	}
	d.fail(n, path, "expected boolean (true or false), got %s", describe(n))
}

func (d *decoder) integer(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == tagInt {
		var i int64
		if err := n.Decode(&i); err != nil || v.OverflowInt(i) {
			d.fail(n, path, "integer %s is out of range", clip(n.Value))
			return
		}
		v.SetInt(i)
		return
	}
	d.fail(n, path, "expected integer, got %s%s", describe(n), unquoteHint(n, isInteger))
}

func (d *decoder) float(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == tagInt || n.ShortTag() == tagFloat) {
		var f float64
		if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.fail(n, path, "expected a finite number, got %s", clip(n.Value))
			return
		}
		v.SetFloat(f)
		return
	}
	d.fail(n, path, "expected number, got %s%s", describe(n), unquoteHint(n, isNumber))
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || !isPlainScalar(n) {
		d.fail(n, path, "expected duration (500ms, 10s, 5m, 1h), got %s", describe(n))
		return
	}
	dur, err := ParseDuration(n.Value)
	if err != nil {
		d.fail(n, path, "%v", err)
		return
	}
	v.Set(reflect.ValueOf(dur))
}

func (d *decoder) size(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || !isPlainScalar(n) {
		d.fail(n, path, "expected size (1048576, \"1Mi\", \"256Mi\"), got %s", describe(n))
		return
	}
	if n.ShortTag() == tagInt {
		var i int64
		switch err := n.Decode(&i); {
		case err != nil:
			d.fail(n, path, "size %s is too large", clip(n.Value))
		case i < 0:
			d.fail(n, path, "negative size %q", n.Value)
		default:
			v.Set(reflect.ValueOf(Size{i}))
		}
		return
	}
	sz, err := ParseSize(n.Value)
	if err != nil {
		d.fail(n, path, "%v", err)
		return
	}
	v.Set(reflect.ValueOf(sz))
}

// pair is one key and value of a mapping.
type pair struct{ key, value *yaml.Node }

// pairs returns the key/value pairs of a mapping, with merge keys ("<<")
// expanded: keys written in the mapping win over merged ones, and earlier
// merged mappings win over later ones. A key written twice is a problem;
// so is a key that is not a scalar. child makes a key's field path.
func (d *decoder) pairs(n *yaml.Node, path string, child func(string) string, depth int) []pair {
	var out []pair
	seen := map[string]int{} // key → line
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		switch {
		case k.Kind == yaml.ScalarNode && k.ShortTag() == tagMerge:
			merges = append(merges, v)
			continue
		case k.Kind != yaml.ScalarNode:
			d.o.add(k.Line, path, "expected a string key, got "+describe(k))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.o.add(k.Line, child(k.Value), fmt.Sprintf("duplicate key %q (first at line %d)", clip(k.Value), line))
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, pair{k, v})
	}
	for _, m := range merges {
		out = d.merge(m, path, child, depth, seen, out)
	}
	return out
}

// merge appends to out the pairs of a merge key's value (a mapping or a
// list of mappings) whose keys are not yet seen.
func (d *decoder) merge(m *yaml.Node, path string, child func(string) string, depth int, seen map[string]int, out []pair) []pair {
	if !d.spend(m, path) {
		return out
	}
	m = deref(m)
	if depth >= maxDepth {
		d.fail(m, path, "merge keys (<<) nested more than %d levels deep", maxDepth)
		return out
	}
	switch m.Kind {
	case yaml.MappingNode:
		for _, p := range d.pairs(m, path, child, depth+1) {
			if _, ok := seen[p.key.Value]; !ok {
				seen[p.key.Value] = p.key.Line
				out = append(out, p)
			}
		}
	case yaml.SequenceNode:
		for _, e := range m.Content {
			if deref(e).Kind != yaml.MappingNode {
				d.fail(e, path, "a merge key (<<) takes a mapping or a list of mappings, got a list holding %s", describe(deref(e)))
				continue
			}
			out = d.merge(e, path, child, depth+1, seen, out)
		}
	default:
		d.fail(m, path, "a merge key (<<) takes a mapping or a list of mappings, got %s", describe(m))
	}
	return out
}

// deref follows aliases to the anchored node.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < maxDepth; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == tagNull }

// isPlainScalar reports whether a scalar's tag is one YAML resolves by
// itself (not a custom "!tag").
func isPlainScalar(n *yaml.Node) bool {
	switch n.ShortTag() {
	case tagStr, tagInt, tagFloat:
		return true
	}
	return false
}

// describe names a node for a message: `string "abc"`, `integer 12`, `list`.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	case yaml.ScalarNode:
		switch tag := n.ShortTag(); tag {
		case tagStr, tagMerge:
			return "string " + strconv.Quote(clip(n.Value))
		case tagInt:
			return "integer " + clip(n.Value)
		case tagFloat:
			return "number " + clip(n.Value)
		case tagBool:
			return "boolean " + n.Value
		case tagNull:
			return "null"
		case tagTimestamp:
			return "timestamp " + clip(n.Value)
		default:
			return fmt.Sprintf("%s %q", clip(tag), clip(n.Value))
		}
	}
	return "nothing"
}

var (
	integerRE = regexp.MustCompile(`^[-+]?[0-9]+$`)
	numberRE  = regexp.MustCompile(`^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$`)
)

func isInteger(s string) bool { return integerRE.MatchString(s) }
func isNumber(s string) bool  { return numberRE.MatchString(s) }

// unquoteHint suggests removing the quotes from a quoted number.
func unquoteHint(n *yaml.Node, ok func(string) bool) string {
	if n.Kind == yaml.ScalarNode && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 && ok(n.Value) {
		return " (remove the quotes)"
	}
	return ""
}

// clip shortens a value quoted in a message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// mapKey joins a field path and a map key: plain keys as "path.key",
// others quoted, `metadata.labels["app.kubernetes.io/name"]`.
func mapKey(path, key string) string {
	if plainKeyRE.MatchString(key) {
		return field(path, key)
	}
	return path + "[" + strconv.Quote(key) + "]"
}

var plainKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// structFields is what the decoder knows of a struct type: its YAML keys
// in declaration order and the field index of each.
type structFields struct {
	names []string
	index map[string]int
}

var fieldCache sync.Map // reflect.Type → *structFields

func fieldsOf(t reflect.Type) *structFields {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(*structFields)
	}
	fs := &structFields{index: map[string]int{}}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		fs.names = append(fs.names, name)
		fs.index[name] = i
	}
	fieldCache.Store(t, fs)
	return fs
}
