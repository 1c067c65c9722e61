// Package apigateway is the reference API gateway use case made runnable on
// localhost: its resource files (embedded, see Files) and the three demo
// services the gateway routes to (users, orders, products; see Services,
// NewService and StartServices). README.md walks through it.
package apigateway

import (
	"bytes"
	"embed"
	"io/fs"

	"github.com/novaedge/novaedge/configs"
)

//go:embed *.yaml
var resources embed.FS

// Files returns the example's resource files (gateway, backends, routes,
// policies), sorted by name. Each call returns fresh copies.
func Files() []configs.File {
	entries, err := fs.ReadDir(resources, ".") // sorted by name
	if err != nil {
		panic("apigateway: embedded files: " + err.Error()) // cannot happen: embed.FS
	}
	files := make([]configs.File, 0, len(entries))
	for _, e := range entries {
		data, err := resources.ReadFile(e.Name())
		if err != nil {
			panic("apigateway: embedded files: " + err.Error())
		}
		files = append(files, configs.File{Name: e.Name(), Data: data})
	}
	return files
}

// DemoFiles returns Files with the JWT policy's jwksUri pointed at jwksURL
// (the local dev issuer's) instead of the reference's auth.example.com,
// which a laptop cannot reach. Nothing else changes.
func DemoFiles(jwksURL string) []configs.File {
	files := Files()
	for i := range files {
		files[i].Data = bytes.ReplaceAll(files[i].Data, []byte(ReferenceJWKSURI), []byte(jwksURL))
	}
	return files
}
