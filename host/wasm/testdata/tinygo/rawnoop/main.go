// Command rawnoop is a proxy-wasm module built with TinyGo but without any
// SDK: it exports the ABI's callbacks itself and every one returns at once,
// with no map, allocation or host call. It is the floor of what a policy
// can cost on this host — the host's side of a request's callbacks
// (context create, request and response headers, done, log, delete) and
// nothing else — beside tinygo/noop, which does nothing through the
// tetratelabs SDK's dispatch. BenchmarkRequestTinyGo runs both; loadbench
// runs it with -only novaedge,novaedge+wasm -wasm
// host/wasm/testdata/tinygo/rawnoop.wasm.
package main

import "unsafe"

func main() {}

//export proxy_abi_version_0_2_1
func abiVersion() {}

// alloc serves the host's copies into the guest (none on this module's
// path: it reads nothing).
//
//export proxy_on_memory_allocate
func alloc(n uint32) *byte { return unsafe.SliceData(make([]byte, n)) }

//export proxy_on_vm_start
func vmStart(_, _ uint32) bool { return true }

//export proxy_on_configure
func configure(_, _ uint32) bool { return true }

//export proxy_on_context_create
func contextCreate(_, _ uint32) {}

//export proxy_on_request_headers
func requestHeaders(_, _, _ uint32) uint32 { return 0 } // Continue

//export proxy_on_response_headers
func responseHeaders(_, _, _ uint32) uint32 { return 0 } // Continue

//export proxy_on_done
func done(uint32) bool { return true }

//export proxy_on_log
func log(uint32) {}

//export proxy_on_delete
func del(uint32) {}
