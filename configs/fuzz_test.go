package configs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadFiles feeds arbitrary bytes to the loader: it must never panic,
// it must explain every failure with at least one problem, and a snapshot
// it returns must encode, and load again, to the same hash.
//
//	go test -run '^$' -fuzz FuzzLoadFiles ./configs/
func FuzzLoadFiles(f *testing.F) {
	for _, glob := range []string{"testdata/reference/*.yaml", "testdata/good/*.yaml", "testdata/bad/*.yaml"} {
		files, err := filepath.Glob(glob)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("a: &a [*a, *a]\nkind: ProxyPolicy\nspec: {wasm: {config: *a}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := LoadFiles([]File{{Name: "fuzz.yaml", Data: data}})
		if err != nil {
			var ps Problems
			if s != nil || !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("LoadFiles = %v, %#v; want nil and some Problems", s, err)
			}
			_ = err.Error()
			return
		}
		if _, err := s.JSON(); err != nil {
			t.Fatalf("JSON: %v", err)
		}
		checkRoundTrip(t, s)
	})
}
