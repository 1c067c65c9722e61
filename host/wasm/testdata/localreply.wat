;; Every request is answered locally: 403, body "forbidden", header
;; x-deny: yes, details "denied".
(module
  (import "env" "proxy_send_local_response" (func $reply (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "denied")
  (data (i32.const 1040) "forbidden")
  ;; serialized map {x-deny: yes}
  (data (i32.const 1056) "\01\00\00\00\06\00\00\00\03\00\00\00x-deny\00yes\00")
  (func (export "proxy_abi_version_0_2_1"))
  (global $heap (mut i32) (i32.const 8192))
  ;; proxy_on_memory_allocate: bump allocator, grows memory as needed.
  (func $alloc (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $p i32) (local $need i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (local.get $p) (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8))))
    (local.set $need (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then (if (i32.eq (memory.grow (i32.add (i32.shr_u (local.get $need) (i32.const 16)) (i32.const 1))) (i32.const -1))
        (then unreachable))))
    (local.get $p))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $reply (i32.const 403) (i32.const 1024) (i32.const 6) (i32.const 1040) (i32.const 9)
      (i32.const 1056) (i32.const 23) (i32.const -1)))
    (i32.const 1)))
