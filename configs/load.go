package configs

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads the configuration from files and directories. A directory is
// read recursively: every *.yaml and *.yml file in it, in lexical order,
// skipping names that start with "." (so that a Kubernetes ConfigMap
// volume, with its "..data" links, is read once). A file may hold several
// YAML documents separated by "---"; empty documents are skipped.
//
// Load returns a validated, defaulted Snapshot, or nil and every problem
// found, as a Problems error sorted by file and line. It does not stop at
// the first problem. When a document cannot be read as a resource at all
// (a YAML syntax error, an unknown kind, a missing name), references to
// missing resources are not reported: they may be defined in that
// document.
func Load(paths ...string) (*Snapshot, error) {
	if len(paths) == 0 {
		return nil, Problems{{Message: "no configuration files or directories given"}}
	}
	var (
		files    []File
		problems Problems
		seen     = map[string]bool{}
	)
	for _, p := range paths {
		names, err := yamlFiles(p)
		if err != nil {
			problems = append(problems, ioProblem(p, err))
			continue
		}
		for _, name := range names {
			if seen[name] {
				continue
			}
			seen[name] = true
			data, err := os.ReadFile(name)
			if err != nil {
				problems = append(problems, ioProblem(name, err))
				continue
			}
			files = append(files, File{Name: name, Data: data})
		}
	}
	return load(files, problems)
}

// LoadFiles is Load for files already in memory: each File is one YAML
// stream, and its Name is what problems cite.
func LoadFiles(files []File) (*Snapshot, error) {
	return load(files, nil)
}

// yamlFiles lists the files that path names: path itself if it is a file,
// or the YAML files under it if it is a directory.
func yamlFiles(root string) ([]string, error) {
	info, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{root}, nil
	}
	var names []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case path != root && strings.HasPrefix(d.Name(), "."):
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		case d.IsDir():
			return nil
		}
		if ext := filepath.Ext(path); ext == ".yaml" || ext == ".yml" {
			names = append(names, path) // regular files and symbolic links to them
		}
		return nil
	})
	slices.Sort(names)
	return names, err
}

func ioProblem(name string, err error) Problem {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return Problem{File: pe.Path, Message: "cannot read: " + pe.Err.Error()}
	}
	return Problem{File: name, Message: "cannot read: " + err.Error()}
}

// loader holds the state of one load.
type loader struct {
	problems Problems
	objects  []*object
	// incomplete is set when a document could not be read as a
	// resource; see catalog.complete.
	incomplete bool
	dir        string // of the file being read (File.Dir)
}

func load(files []File, problems Problems) (*Snapshot, error) {
	l := &loader{problems: problems}
	for _, f := range files {
		l.file(f)
	}
	for _, o := range l.objects {
		applyDefaults(o)
		validate(o)
	}
	c := newCatalog(l.objects, !l.incomplete)
	c.checkReferences(l.objects)
	c.checkListenerConflicts(l.objects)
	if len(l.problems) > 0 {
		return nil, l.problems.sorted()
	}
	return l.snapshot()
}

// file reads every document of a YAML stream. A syntax error ends the
// stream: the parser cannot resynchronize after one.
func (l *loader) file(f File) {
	l.dir = f.Dir
	dec := yaml.NewDecoder(bytes.NewReader(f.Data))
	for {
		var doc yaml.Node
		err := parse(dec, &doc)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			l.problems = append(l.problems, syntaxProblem(f.Name, err))
			l.incomplete = true
			return
		}
		l.document(f.Name, &doc)
	}
}

// parse reads the next document. The YAML parser reports errors by
// panicking internally; should one escape it, it is a problem with the
// input, not a reason to crash.
func parse(dec *yaml.Decoder, doc *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: the YAML parser failed: %v", r)
		}
	}()
	return dec.Decode(doc)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func syntaxProblem(file string, err error) Problem {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{File: file, Line: line, Message: "YAML syntax error: " + m[2]}
	}
	return Problem{File: file, Message: "YAML syntax error: " + strings.TrimPrefix(msg, "yaml: ")}
}

// kinds maps each kind to its Go type and whether it is namespaced.
var kinds = map[string]struct {
	typ        reflect.Type
	namespaced bool
}{
	KindVIP:     {reflect.TypeFor[VIP](), false},
	KindGateway: {reflect.TypeFor[Gateway](), true},
	KindBackend: {reflect.TypeFor[Backend](), true},
	KindRoute:   {reflect.TypeFor[Route](), true},
	KindPolicy:  {reflect.TypeFor[Policy](), true},
}

var kindNames = []string{KindVIP, KindGateway, KindBackend, KindRoute, KindPolicy}

// document decodes one YAML document into a resource.
func (l *loader) document(file string, doc *yaml.Node) {
	if len(doc.Content) == 0 {
		return
	}
	root := deref(doc.Content[0])
	if isNull(root) {
		return // an empty document
	}
	o := newObject(file, root.Line, &l.problems)
	o.src.Dir = l.dir
	if root.Kind != yaml.MappingNode {
		o.add(root.Line, "", "expected a resource (a mapping with apiVersion, kind, metadata and spec), got "+describe(root))
		l.incomplete = true
		return
	}

	// Read the identity first, leniently, so that every problem of the
	// document says which resource it is about.
	kindNode := lookupKey(root, "kind")
	kind, _ := stringValue(kindNode)
	k, known := kinds[kind]
	meta := lookupKey(root, "metadata")
	o.name, _ = stringValue(lookupKey(meta, "name"))
	o.namespace, _ = stringValue(lookupKey(meta, "namespace"))
	if known {
		o.kind = kind
		if !k.namespaced {
			o.namespace = ""
		} else if o.namespace == "" {
			o.namespace = DefaultNamespace
		}
	}

	switch av := lookupKey(root, "apiVersion"); {
	case av == nil || isNull(av):
		o.add(root.Line, "apiVersion", fmt.Sprintf("required (apiVersion: %s)", APIVersion))
	case av.Kind == yaml.ScalarNode && av.ShortTag() == tagStr && av.Value != APIVersion:
		o.add(av.Line, "apiVersion", fmt.Sprintf("unknown apiVersion %q (want %s)", clip(av.Value), APIVersion))
	}
	switch {
	case kindNode == nil || isNull(kindNode):
		o.add(root.Line, "kind", "required ("+orList(kindNames)+")")
	case kindNode.Kind != yaml.ScalarNode || kindNode.ShortTag() != tagStr:
		o.add(kindNode.Line, "kind", "expected string, got "+describe(kindNode))
	case !known:
		msg := fmt.Sprintf("unknown kind %q", clip(kind))
		if s := suggest(kind, kindNames); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		} else {
			msg += " (want " + orList(kindNames) + ")"
		}
		o.add(kindNode.Line, "kind", msg)
	}
	if !known {
		l.incomplete = true
		return
	}

	res := reflect.New(k.typ)
	newDecoder(o).decode(root, res.Elem(), "")
	o.res = res.Interface()
	if o.hasSpec = lookupKey(root, "spec") != nil; !o.hasSpec {
		o.add(root.Line, "spec", "required")
	}
	if o.name == "" {
		l.incomplete = true // nothing can refer to it
	}
	l.objects = append(l.objects, o)
}

// lookupKey returns the value of key in a mapping node, or nil.
func lookupKey(m *yaml.Node, key string) *yaml.Node {
	if m == nil || deref(m).Kind != yaml.MappingNode {
		return nil
	}
	m = deref(m)
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := deref(m.Content[i]); k.Kind == yaml.ScalarNode && k.Value == key && k.ShortTag() != tagMerge {
			return deref(m.Content[i+1])
		}
	}
	return nil
}

// stringValue returns the value of a string scalar.
func stringValue(n *yaml.Node) (string, bool) {
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != tagStr {
		return "", false
	}
	return n.Value, true
}

// snapshot builds the snapshot of a load without problems.
func (l *loader) snapshot() (*Snapshot, error) {
	s := &Snapshot{
		VIPs:     []*VIP{},
		Gateways: []*Gateway{},
		Backends: []*Backend{},
		Routes:   []*Route{},
		Policies: []*Policy{},
	}
	for _, o := range l.objects {
		switch r := o.res.(type) {
		case *VIP:
			r.Source = o.src
			s.VIPs = append(s.VIPs, r)
		case *Gateway:
			r.Source = o.src
			s.Gateways = append(s.Gateways, r)
		case *Backend:
			r.Source = o.src
			s.Backends = append(s.Backends, r)
		case *Route:
			r.Source = o.src
			s.Routes = append(s.Routes, r)
		case *Policy:
			r.Source = o.src
			s.Policies = append(s.Policies, r)
		}
	}
	sortByName(s.VIPs, func(r *VIP) *ObjectMeta { return &r.Metadata })
	sortByName(s.Gateways, func(r *Gateway) *ObjectMeta { return &r.Metadata })
	sortByName(s.Backends, func(r *Backend) *ObjectMeta { return &r.Metadata })
	sortByName(s.Routes, func(r *Route) *ObjectMeta { return &r.Metadata })
	sortByName(s.Policies, func(r *Policy) *ObjectMeta { return &r.Metadata })
	hash, err := s.contentHash()
	if err != nil {
		return nil, Problems{{Message: "cannot encode the snapshot: " + err.Error()}}
	}
	s.Hash = hash
	return s, nil
}

func sortByName[T any](rs []*T, meta func(*T) *ObjectMeta) {
	slices.SortFunc(rs, func(a, b *T) int {
		x, y := meta(a), meta(b)
		return cmp.Or(cmp.Compare(x.Namespace, y.Namespace), cmp.Compare(x.Name, y.Name))
	})
}
