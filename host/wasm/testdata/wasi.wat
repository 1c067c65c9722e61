;; WASI under both names: _initialize writes a line to stdout through
;; wasi_unstable.fd_write; proxy_on_vm_start checks that the wall clock is
;; real (after 2020) and random_get works.
(module
  (import "wasi_unstable" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "hello from wasi\n")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "_initialize")
    (i32.store (i32.const 512) (i32.const 1024))
    (i32.store (i32.const 516) (i32.const 16))
    (drop (call $fd_write (i32.const 1) (i32.const 512) (i32.const 1) (i32.const 520))))
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
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (if (call $clock (i32.const 0) (i64.const 1) (i32.const 600)) (then (return (i32.const 0))))
    (if (call $random (i32.const 700) (i32.const 16)) (then (return (i32.const 0))))
    (i64.gt_u (i64.load (i32.const 600)) (i64.const 1600000000000000000))))
