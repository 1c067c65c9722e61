;; Starts once per Runtime: proxy_on_vm_start refuses when the shared-data key
;; "started" exists, and sets it. Every request traps. Used to test the
;; back-off after failed VM restarts.
(module
  (import "env" "proxy_get_shared_data" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "started")
  (global $heap (mut i32) (i32.const 8192))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (local.get $p) (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8))))
    (local.get $p))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (if (i32.eqz (call $get (i32.const 1024) (i32.const 7) (i32.const 512) (i32.const 516) (i32.const 520)))
      (then (return (i32.const 0))))
    (drop (call $set (i32.const 1024) (i32.const 7) (i32.const 1024) (i32.const 1) (i32.const 0)))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) unreachable))
