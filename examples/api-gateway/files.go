// Package apigateway is the reference API gateway use case made runnable on
// localhost: its resource files (embedded, see Files) and the three demo
// services the gateway routes to (users, orders, products; see Services,
// NewService and StartServices). README.md walks through it.
package apigateway

import (
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
