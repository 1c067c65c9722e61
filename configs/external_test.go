package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadExternal(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res := func(module, comment string) string {
		return `# ` + comment + `
apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
metadata: {name: gw, namespace: t}
spec:
  listeners: [{name: http, address: 127.0.0.1, port: 8080, protocol: HTTP}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: user, namespace: t}
spec:
  type: Wasm
  targetRef: {kind: ProxyGateway, name: gw}
  wasm: {module: ` + module + `}
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: keys, namespace: t}
spec:
  type: KeyAuth
  targetRef: {kind: ProxyGateway, name: gw}
  keyAuth: {keysFile: keys.txt}
`
	}
	load := func(module, comment string) *Snapshot {
		t.Helper()
		write("res.yaml", res(module, comment))
		s, err := Load(filepath.Join(dir, "res.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		s.ReadExternal(func(name string) bool { return name == "bundled-one" })
		return s
	}
	write("a.wasm", "module A")
	write("keys.txt", "k1 alice\n")
	s1 := load("a.wasm", "one")
	if got, want := s1.ExternalPaths(), []string{filepath.Join(dir, "a.wasm"), filepath.Join(dir, "keys.txt")}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("ExternalPaths = %v, want %v", got, want)
	}
	f, ok := s1.Policy("t", "user").File("a.wasm")
	if !ok || string(f.Data) != "module A" || f.Err != nil {
		t.Fatalf("File(a.wasm) = %+v, %v", f, ok)
	}

	// A comment is no change; a module's content is.
	s2 := load("a.wasm", "two")
	if s2.Hash != s1.Hash || s2.Policy("t", "user").Fingerprint() != s1.Policy("t", "user").Fingerprint() {
		t.Error("a comment changed the hash or a fingerprint")
	}
	write("a.wasm", "module B")
	s3 := load("a.wasm", "two")
	if s3.Hash == s1.Hash {
		t.Error("a new module file did not change the hash")
	}
	if s3.Policy("t", "user").Fingerprint() == s1.Policy("t", "user").Fingerprint() {
		t.Error("a new module file did not change the policy's fingerprint")
	}
	if s3.Policy("t", "keys").Fingerprint() != s1.Policy("t", "keys").Fingerprint() {
		t.Error("another policy's fingerprint changed")
	}
	write("keys.txt", "k2 bob\n")
	if s4 := load("a.wasm", "two"); s4.Policy("t", "keys").Fingerprint() == s3.Policy("t", "keys").Fingerprint() || s4.Hash == s3.Hash {
		t.Error("a new keys file changed neither the hash nor the KeyAuth fingerprint")
	}

	// A bundled name is not a file; a missing file carries its error.
	s5 := load("bundled-one", "x")
	if _, ok := s5.Policy("t", "user").File("bundled-one"); ok {
		t.Error("a bundled module was read as a file")
	}
	s6 := load("missing.wasm", "x")
	if f, ok := s6.Policy("t", "user").File("missing.wasm"); !ok || f.Err == nil {
		t.Errorf("missing file: %+v, %v", f, ok)
	}
}

func TestBackendFingerprint(t *testing.T) {
	load := func(y string) *Backend {
		t.Helper()
		s, err := LoadFiles([]File{{Name: "b.yaml", Data: []byte(`apiVersion: novaedge.io/v1alpha1
kind: ProxyBackend
metadata: {name: b, namespace: t}
spec:
` + y)}})
		if err != nil {
			t.Fatal(err)
		}
		return s.Backends[0]
	}
	a := load("  endpoints: [{address: \"127.0.0.1:1\"}]\n")
	b := load("  endpoints: [{address: \"127.0.0.1:1\"}]\n  lbPolicy: RoundRobin\n") // the default, spelled out
	c := load("  endpoints: [{address: \"127.0.0.1:2\"}]\n")
	if a.Fingerprint() != b.Fingerprint() {
		t.Error("spelling out a default changed the fingerprint")
	}
	if a.Fingerprint() == c.Fingerprint() {
		t.Error("a new endpoint did not change the fingerprint")
	}
}

// TestYAMLRoundTrip: the resources as YAML documents load back to the
// same configuration (the same hash), for every good configuration.
func TestYAMLRoundTrip(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/good/*.yaml")
	dirs = append(dirs, "testdata/reference")
	for _, path := range dirs {
		s, err := Load(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		y, err := s.YAML()
		if err != nil {
			t.Fatal(err)
		}
		back, err := LoadFiles([]File{{Name: "back.yaml", Data: y}})
		if err != nil {
			t.Fatalf("%s: %v\n%s", path, err, y)
		}
		if back.Hash != s.Hash {
			a, _ := s.JSON()
			b, _ := back.JSON()
			t.Errorf("%s: round trip changed the configuration:\n%s\n---\n%s", path, a, b)
		}
	}
}

// TestReadExternalHashIgnoresLocation: the hash folds the files a snapshot
// names by content, not by resolved path, so the same files loaded through
// a relative and an absolute path, or from another directory, hash alike
// (`novaedge validate conf` and `novaedge run -c /srv/conf` print one hash).
func TestReadExternalHashIgnoresLocation(t *testing.T) {
	res := `apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
metadata: {name: gw, namespace: t}
spec:
  listeners: [{name: http, address: 127.0.0.1, port: 8080, protocol: HTTP}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: user, namespace: t}
spec:
  type: Wasm
  targetRef: {kind: ProxyGateway, name: gw}
  wasm: {module: a.wasm}
`
	mkdir := func(module string) string {
		t.Helper()
		dir := t.TempDir()
		for name, data := range map[string]string{"res.yaml": res, "a.wasm": module} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	load := func(path string) string {
		t.Helper()
		s, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		s.ReadExternal(nil)
		return s.Hash
	}
	dir, other, changed := mkdir("module A"), mkdir("module A"), mkdir("module B")
	t.Chdir(dir)
	tests := []struct {
		name string
		path string
		same bool
	}{
		{name: "relative directory", path: ".", same: true},
		{name: "relative file", path: "res.yaml", same: true},
		{name: "same files elsewhere", path: other, same: true},
		{name: "another module", path: changed, same: false},
	}
	want := load(dir)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := load(tc.path); (got == want) != tc.same {
				t.Errorf("hash %s, absolute path's %s; want same=%v", got, want, tc.same)
			}
		})
	}
}
