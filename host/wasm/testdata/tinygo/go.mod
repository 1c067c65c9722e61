module novaedge.test/tinygo

go 1.25

require github.com/tetratelabs/proxy-wasm-go-sdk v0.24.0
