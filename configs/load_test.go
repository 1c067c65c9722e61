package configs

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLoadReference(t *testing.T) {
	s, err := Load("testdata/reference")
	if err != nil {
		t.Fatalf("the reference use case must load:\n%v", err)
	}
	if got := []int{len(s.VIPs), len(s.Gateways), len(s.Backends), len(s.Routes), len(s.Policies)}; !slices.Equal(got, []int{1, 1, 3, 3, 4}) {
		t.Errorf("resources = %v, want [1 1 3 3 4]", got)
	}
	if len(s.Hash) != 64 {
		t.Errorf("Hash = %q, want 64 hex digits", s.Hash)
	}
	b := s.Backend("api-system", "users-backend")
	if b == nil {
		t.Fatal(`Backend("api-system", "users-backend") = nil`)
	}
	if want := (Source{File: filepath.Join("testdata/reference", "backends.yaml"), Line: 1}); b.Source != want {
		t.Errorf("Source = %+v, want %+v", b.Source, want)
	}
	if s.VIP("api-gateway-vip") == nil || s.Gateway("api-system", "api-gateway") == nil ||
		s.Route("api-system", "products-route") == nil || s.Policy("api-system", "api-cors") == nil {
		t.Error("a lookup of a resource of the reference returned nil")
	}
}

func TestLookupMissing(t *testing.T) {
	s, err := Load("testdata/reference")
	if err != nil {
		t.Fatal(err)
	}
	var none *Snapshot
	for _, tc := range []struct {
		name string
		got  any
	}{
		{"other namespace", s.Backend("default", "users-backend")},
		{"no such name", s.Route("api-system", "nope")},
		{"wrong kind", s.Policy("api-system", "users-route")},
		{"no such VIP", s.VIP("api-system")},
		{"nil snapshot", none.Gateway("api-system", "api-gateway")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if v := tc.got; !isNilPointer(v) {
				t.Errorf("got %v, want nil", v)
			}
		})
	}
}

func isNilPointer(v any) bool {
	switch p := v.(type) {
	case *VIP:
		return p == nil
	case *Gateway:
		return p == nil
	case *Backend:
		return p == nil
	case *Route:
		return p == nil
	case *Policy:
		return p == nil
	}
	return false
}

func TestProblemString(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Problem
		want string
	}{
		{
			name: "everything",
			p: Problem{File: "routes.yaml", Line: 23, Kind: KindRoute, Namespace: "api-system", Name: "users-route",
				Field: "spec.rules[0].backendRefs[0].name", Message: `no ProxyBackend "users-backendX" in namespace "api-system"`},
			want: `routes.yaml:23: ProxyRoute api-system/users-route: spec.rules[0].backendRefs[0].name: no ProxyBackend "users-backendX" in namespace "api-system"`,
		},
		{
			name: "cluster-scoped",
			p:    Problem{File: "vip.yaml", Line: 7, Kind: KindVIP, Name: "vip", Field: "spec.mode", Message: "required (L2ARP)"},
			want: "vip.yaml:7: ProxyVIP vip: spec.mode: required (L2ARP)",
		},
		{
			name: "whole file",
			p:    Problem{File: "x.yaml", Line: 3, Message: "YAML syntax error: did not find expected key"},
			want: "x.yaml:3: YAML syntax error: did not find expected key",
		},
		{
			name: "no line",
			p:    Problem{File: "missing", Message: "cannot read: no such file or directory"},
			want: "missing: cannot read: no such file or directory",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.String(); got != tc.want {
				t.Errorf("String() =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestProblemsSortedAcrossFiles(t *testing.T) {
	doc := func(name, port string) string {
		return "apiVersion: novaedge.io/v1alpha1\nkind: ProxyBackend\nmetadata:\n  name: " + name +
			"\nspec:\n  serviceRef: {name: svc, port: " + port + "}\n"
	}
	_, err := LoadFiles([]File{
		{Name: "b.yaml", Data: []byte(doc("b", "0") + "---\n" + doc("B", "1"))},
		{Name: "a.yaml", Data: []byte(doc("a", "x"))},
	})
	want := strings.Join([]string{
		`a.yaml:6: ProxyBackend default/a: spec.serviceRef.port: expected integer, got string "x"`,
		`b.yaml:6: ProxyBackend default/b: spec.serviceRef.port: required (1–65535)`,
		`b.yaml:11: ProxyBackend default/B: metadata.name: invalid name "B": ` + subdomainRule,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}

func TestLoadPaths(t *testing.T) {
	dir := t.TempDir()
	backend := []byte("apiVersion: novaedge.io/v1alpha1\nkind: ProxyBackend\nmetadata: {name: web}\nspec: {serviceRef: {name: web, port: 80}}\n")
	route := []byte("apiVersion: novaedge.io/v1alpha1\nkind: ProxyRoute\nmetadata: {name: web}\nspec: {rules: [{backendRefs: [{name: web}]}]}\n")
	mustWrite(t, filepath.Join(dir, "backend.yaml"), backend)
	mustWrite(t, filepath.Join(dir, "routes", "route.conf"), route) // any name, when named explicitly

	for _, tc := range []struct {
		name    string
		paths   []string
		backend bool
		route   bool
		problem string
	}{
		{name: "directory", paths: []string{dir}, backend: true},
		{name: "file and file", paths: []string{filepath.Join(dir, "backend.yaml"), filepath.Join(dir, "routes", "route.conf")}, backend: true, route: true},
		{name: "directory and file", paths: []string{dir, filepath.Join(dir, "routes/route.conf")}, backend: true, route: true},
		{name: "same file twice", paths: []string{dir, filepath.Join(dir, "backend.yaml")}, backend: true},
		{name: "dangling without the backend", paths: []string{filepath.Join(dir, "routes/route.conf")}, problem: `no ProxyBackend "web" in namespace "default"`},
		{name: "missing path", paths: []string{filepath.Join(dir, "nope")}, problem: "cannot read: no such file or directory"},
		{name: "no paths", paths: nil, problem: "no configuration files or directories given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Load(tc.paths...)
			if tc.problem != "" {
				if s != nil || err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("Load = %v, %v; want a problem containing %q", s, err, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Backend("default", "web") != nil; got != tc.backend {
				t.Errorf("backend loaded = %v, want %v", got, tc.backend)
			}
			if got := s.Route("default", "web") != nil; got != tc.route {
				t.Errorf("route loaded = %v, want %v", got, tc.route)
			}
		})
	}
}

func TestLoadFilesEmpty(t *testing.T) {
	s, err := LoadFiles([]File{{Name: "empty.yaml", Data: []byte("# nothing yet\n---\n")}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(got, []byte(`"vips": []`)) || !bytes.Contains(got, []byte(`"policies": []`)) {
		t.Errorf("an empty snapshot should list empty kinds, not null:\n%s", got)
	}
}

// TestHash checks that the hash depends on the resources only.
func TestHash(t *testing.T) {
	ref := loadHash(t, readDir(t, "testdata/reference")...)

	// The reference's documents in one file, in reverse order.
	var docs []string
	for _, f := range readDir(t, "testdata/reference") {
		docs = append(docs, strings.Split(string(f.Data), "\n---\n")...)
	}
	slices.Reverse(docs)
	reversed := loadHash(t, File{Name: "all.yaml", Data: []byte(strings.Join(docs, "\n---\n"))})
	if reversed != ref {
		t.Errorf("the reference in one file, reversed: hash %s, want %s", reversed, ref)
	}

	block := `# A backend, written long-hand.
apiVersion: novaedge.io/v1alpha1
kind: ProxyBackend
metadata:
  name: web
spec:
  endpoints:
    - address: "10.0.0.1:8080"
  healthCheck:
    interval: 60s
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
metadata:
  name: edge
spec:
  listeners:
    - name: http
      port: 80
      protocol: HTTP
      maxRequestBodySize: 1048576
`
	for _, tc := range []struct {
		name  string
		yaml  string
		equal bool
	}{
		{name: "same text", yaml: block, equal: true},
		{
			name: "other layout, order, spelling and explicit defaults",
			yaml: `apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
spec: {listeners: [{protocol: HTTP, port: 80, name: http, maxRequestBodySize: 1Mi}]}
metadata: {namespace: default, name: edge}
---
kind: ProxyBackend
apiVersion: novaedge.io/v1alpha1
metadata: {name: web}
spec:
  lbPolicy: RoundRobin   # the default, spelt out
  healthCheck: {interval: 1m, timeout: 5s}
  endpoints: [{address: 10.0.0.1:8080, weight: 1}]
`,
			equal: true,
		},
		{name: "one value changed", yaml: strings.Replace(block, "port: 80", "port: 8080", 1), equal: false},
		{name: "one default overridden", yaml: strings.Replace(block, "interval: 60s", "interval: 60s\n    timeout: 4s", 1), equal: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := loadHash(t, File{Name: "a.yaml", Data: []byte(block)})
			b := loadHash(t, File{Name: "b.yaml", Data: []byte(tc.yaml)})
			if (a == b) != tc.equal {
				t.Errorf("hashes %s and %s: equal = %v, want %v", a, b, a == b, tc.equal)
			}
		})
	}
}

func loadHash(t *testing.T, files ...File) string {
	t.Helper()
	s, err := LoadFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	return s.Hash
}

func readDir(t *testing.T, dir string) []File {
	t.Helper()
	names, err := yamlFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []File
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, File{Name: n, Data: data})
	}
	return files
}

func mustWrite(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkRoundTrip checks that a snapshot's resources, written back as
// YAML (JSON is YAML), load again to the same snapshot: normalization is
// idempotent and a normalized configuration is valid.
func checkRoundTrip(t *testing.T, s *Snapshot) {
	t.Helper()
	data, err := resourcesYAML(s)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadFiles([]File{{Name: "roundtrip.yaml", Data: data}})
	if err != nil {
		t.Fatalf("the normalized resources do not load again:\n%v\n%s", err, data)
	}
	if again.Hash != s.Hash {
		a, _ := s.JSON()
		b, _ := again.JSON()
		t.Fatalf("the normalized resources load to another snapshot:\n%s", lineDiff(string(a), string(b)))
	}
}

// resourcesYAML writes every resource of s as one JSON document of a YAML
// stream.
func resourcesYAML(s *Snapshot) ([]byte, error) {
	var all []any
	for _, r := range s.VIPs {
		all = append(all, r)
	}
	for _, r := range s.Gateways {
		all = append(all, r)
	}
	for _, r := range s.Backends {
		all = append(all, r)
	}
	for _, r := range s.Routes {
		all = append(all, r)
	}
	for _, r := range s.Policies {
		all = append(all, r)
	}
	var buf bytes.Buffer
	for _, r := range all {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		buf.WriteString("---\n")
		buf.Write(b)
		buf.WriteString("\n")
	}
	return buf.Bytes(), nil
}

func TestProblemsIsError(t *testing.T) {
	_, err := LoadFiles([]File{{Name: "x.yaml", Data: []byte("kind: [")}})
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 || ps[0].File != "x.yaml" {
		t.Fatalf("got %#v", err)
	}
}
