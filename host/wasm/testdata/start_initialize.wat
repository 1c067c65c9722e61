;; Reactor: _initialize must run once, first, and _start never. Also the
;; no-op module of the benchmarks (ABI 0.2.0).
(module
  (memory (export "memory") 1)
  (global $n (mut i32) (i32.const 0))
  (func (export "proxy_abi_version_0_2_0"))
  (func (export "_initialize") (global.set $n (i32.add (global.get $n) (i32.const 1))))
  (func (export "_start") unreachable)
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
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.eq (global.get $n) (i32.const 1)))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0)))
