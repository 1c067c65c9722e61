;; The header-adding module of the benchmarks: adds x-wasm: on to the request.
(module
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "x-wasm")
  (data (i32.const 1040) "on")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (unreachable))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $add (i32.const 0) (i32.const 1024) (i32.const 6) (i32.const 1040) (i32.const 2)))
    (i32.const 0)))
