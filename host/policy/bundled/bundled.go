// Package bundled holds NovaEdge's first-party policy plugins, built with
// TinyGo from plugins/ by `make plugins` and embedded in the binary: users
// need no TinyGo. `make plugins-check` (in CI) rebuilds them and fails if
// a byte differs from what is committed here.
package bundled

import (
	"embed"
	"io/fs"
	"strings"
	"sync"
)

//go:embed *.wasm
var files embed.FS

// Modules returns the bundled modules by name ("cors", …). The map is
// built once, on first use, and shared by every caller: it and its byte
// slices must not be modified.
func Modules() map[string][]byte { return modules() }

// modules reads the embedded files once.
var modules = sync.OnceValue(func() map[string][]byte {
	m := map[string][]byte{}
	entries, _ := fs.ReadDir(files, ".")
	for _, e := range entries {
		b, err := files.ReadFile(e.Name())
		if err == nil {
			m[strings.TrimSuffix(e.Name(), ".wasm")] = b
		}
	}
	return m
})
