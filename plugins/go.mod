module github.com/novaedge/novaedge/plugins

go 1.24

require (
	github.com/novaedge/novaedge/sdk v0.0.0
	github.com/tetratelabs/proxy-wasm-go-sdk v0.24.0
)

require github.com/tetratelabs/wazero v1.7.2 // indirect

replace github.com/novaedge/novaedge/sdk => ../sdk
