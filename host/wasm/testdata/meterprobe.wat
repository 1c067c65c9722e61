;; Tries to outrun the meter (meter.go) in proxy_on_request_headers, in the
;; way named by the first byte of the plugin configuration:
;;   s one WASI poll_oneoff sleeping 30 s
;;   S a loop of WASI poll_oneoff sleeping 1 ms each
;;   f a loop of memory.fill over the whole memory (grown to its ceiling)
;;   c a loop of memory.copy over half the memory (grown to its ceiling)
;;   i a loop of memory.init of a 64 KiB passive data segment, repeated
;;   r a loop of WASI random_get over the whole memory
;;   l a loop of proxy_log of the whole memory
;;   w a loop of WASI fd_write of the whole memory to stdout
;;   g memory grown a page at a time up to its ceiling (then returns)
;;   t a table grown to 1M entries, then a loop of table.fill over it
;;   b an infinite loop through br_table
;;   p an infinite loop with a parameter and a result (multi-value)
;;   x an infinite loop of call_indirect through a ref.func set in a table
;;   v an infinite loop of SIMD arithmetic
;; Every other callback runs normally; a configuration of "-" runs nothing.
(module
  (import "env" "proxy_get_buffer_bytes" (func $getbuf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (table $t 1 funcref)
  (table $big 0 funcref)
  (type $void (func))
  (type $i2i (func (param i32) (result i32)))
  (global $mode (mut i32) (i32.const 0))
  (data $seg "\00")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 8192))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (if (i32.eqz (call $getbuf (i32.const 7) (i32.const 0) (i32.const 1) (i32.const 512) (i32.const 516)))
      (then (global.set $mode (i32.load8_u (i32.load (i32.const 512))))))
    (i32.const 1))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func $growAll
    (loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))))
  ;; sleep writes one relative clock subscription of ns nanoseconds at 1024
  ;; and polls it.
  (func $sleep (param $ns i64)
    (i64.store (i32.const 1024) (i64.const 0))        ;; userdata
    (i32.store8 (i32.const 1032) (i32.const 0))       ;; tag: clock
    (i32.store (i32.const 1040) (i32.const 1))        ;; clock id: monotonic
    (i64.store (i32.const 1048) (local.get $ns))      ;; timeout
    (i64.store (i32.const 1056) (i64.const 0))        ;; precision
    (i32.store16 (i32.const 1064) (i32.const 0))      ;; flags: relative
    (drop (call $poll (i32.const 1024) (i32.const 2048) (i32.const 1) (i32.const 3000))))
  (func $next (param $n i32) (result i32) (i32.add (local.get $n) (i32.const 1)))
  (func $spinv (call_indirect $t (type $void) (i32.const 0)))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (local $v v128)
    (if (i32.eq (global.get $mode) (i32.const 0x73)) ;; s
      (then (call $sleep (i64.const 30000000000))))
    (if (i32.eq (global.get $mode) (i32.const 0x53)) ;; S
      (then (loop $l (call $sleep (i64.const 1000000)) (br $l))))
    (if (i32.eq (global.get $mode) (i32.const 0x66)) ;; f
      (then (call $growAll)
        (loop $l (memory.fill (i32.const 0) (i32.const 7) (i32.mul (memory.size) (i32.const 65536))) (br $l))))
    (if (i32.eq (global.get $mode) (i32.const 0x63)) ;; c
      (then (call $growAll)
        (loop $l (memory.copy (i32.const 0) (i32.mul (memory.size) (i32.const 32768)) (i32.mul (memory.size) (i32.const 32768))) (br $l))))
    (if (i32.eq (global.get $mode) (i32.const 0x69)) ;; i
      (then (call $growAll)
        (loop $l (memory.init $seg (i32.const 0) (i32.const 0) (i32.const 1)) (br $l))))
    (if (i32.eq (global.get $mode) (i32.const 0x72)) ;; r
      (then (call $growAll)
        (loop $l (drop (call $random (i32.const 0) (i32.mul (memory.size) (i32.const 65536)))) (br $l))))
    (if (i32.eq (global.get $mode) (i32.const 0x6c)) ;; l
      (then (call $growAll)
        (loop $l (drop (call $log (i32.const 5) (i32.const 0) (i32.mul (memory.size) (i32.const 65536)))) (br $l))))
    (if (i32.eq (global.get $mode) (i32.const 0x77)) ;; w
      (then (call $growAll)
        ;; one iovec at 4000: the whole memory
        (i32.store (i32.const 4000) (i32.const 0))
        (i32.store (i32.const 4004) (i32.mul (memory.size) (i32.const 65536)))
        (loop $l (drop (call $write (i32.const 1) (i32.const 4000) (i32.const 1) (i32.const 4008))) (br $l))))
    (if (i32.eq (global.get $mode) (i32.const 0x67)) ;; g
      (then (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))))
    (if (i32.eq (global.get $mode) (i32.const 0x74)) ;; t
      (then
        (loop $g (br_if $g (i32.and (i32.ne (table.grow $big (ref.null func) (i32.const 65536)) (i32.const -1))
                                    (i32.lt_u (table.size $big) (i32.const 1048576)))))
        (loop $l (table.fill $big (i32.const 0) (ref.func $spinv) (table.size $big)) (br $l))))
    (if (i32.eq (global.get $mode) (i32.const 0x62)) ;; b
      (then (block $out (loop $l (br_table $l $l $out (i32.const 1))))))
    (if (i32.eq (global.get $mode) (i32.const 0x70)) ;; p
      (then i32.const 0 loop $l (param i32) (result i32) call $next br $l end drop))
    (if (i32.eq (global.get $mode) (i32.const 0x78)) ;; x
      (then (table.set $t (i32.const 0) (ref.func $spinv)) (call $spinv)))
    (if (i32.eq (global.get $mode) (i32.const 0x76)) ;; v
      (then (loop $l (local.set $v (i32x4.add (local.get $v) (i32x4.splat (i32.const 1)))) (br $l))))
    (i32.const 0))
  (elem declare func $spinv))
