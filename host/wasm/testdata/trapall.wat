;; Traps in the one callback named by the first byte of the plugin
;; configuration (of the VM configuration for proxy_on_vm_start):
;;   a proxy_on_context_create (an HTTP context)   b proxy_on_request_headers
;;   c proxy_on_request_body      d proxy_on_request_trailers
;;   e proxy_on_response_headers  f proxy_on_response_body
;;   g proxy_on_response_trailers h proxy_on_done
;;   i proxy_on_log               j proxy_on_delete
;;   k proxy_on_vm_start          l proxy_on_configure
;;   m proxy_on_tick (asks for a tick every 10 ms)
;; and runs normally in every other callback. The second byte, if any, says
;; how it fails:
;;   (none) unreachable         l an infinite loop
;;   h an infinite loop of host calls
;;   r infinite recursion       m a memory bomb (grows memory until refused,
;;                                then unreachable)
;;   i infinite recursion through call_indirect
;;   s sleeps for an hour (WASI poll_oneoff on the clock), in a loop
(module
  (import "env" "proxy_get_buffer_bytes" (func $getbuf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $tick (param i32) (result i32)))
  (import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (table 1 funcref)
  (elem (i32.const 0) $spin)
  (type $void (func))
  (global $mode (mut i32) (i32.const 0))
  (global $how (mut i32) (i32.const 0))
  (func (export "proxy_abi_version_0_2_1"))
  ;; The host asks for memory only for the configuration bytes.
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 8192))
  (func $trapIf (param $c i32)
    (if (i32.eq (global.get $mode) (local.get $c)) (then (call $fail))))
  (func $fail
    (if (i32.eq (global.get $how) (i32.const 0x6c)) ;; l
      (then (loop $forever (br $forever))))
    (if (i32.eq (global.get $how) (i32.const 0x68)) ;; h
      (then (loop $calls (drop (call $now (i32.const 600))) (br $calls))))
    (if (i32.eq (global.get $how) (i32.const 0x72)) ;; r
      (then (call $recurse (i32.const 0))))
    (if (i32.eq (global.get $how) (i32.const 0x6d)) ;; m
      (then (loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))))
    (if (i32.eq (global.get $how) (i32.const 0x69)) ;; i
      (then (call_indirect (type $void) (i32.const 0))))
    (if (i32.eq (global.get $how) (i32.const 0x73)) ;; s
      (then
        ;; One clock subscription at 1024: tag 0 (clock) at +8, clock id 1
        ;; (monotonic) at +16, timeout 3600 s at +24; events at 2048.
        (i32.store8 (i32.const 1032) (i32.const 0))
        (i32.store (i32.const 1040) (i32.const 1))
        (i64.store (i32.const 1048) (i64.const 3600000000000))
        (loop $sleep
          (drop (call $poll (i32.const 1024) (i32.const 2048) (i32.const 1) (i32.const 4000)))
          (br $sleep))))
    unreachable)
  (func $recurse (param $n i32)
    (call $recurse (i32.add (local.get $n) (i32.const 1))))
  (func $spin (call_indirect (type $void) (i32.const 0)))
  (func $readMode (param $buffer i32)
    (if (i32.eqz (call $getbuf (local.get $buffer) (i32.const 0) (i32.const 2) (i32.const 512) (i32.const 516)))
      (then
        (global.set $mode (i32.load8_u (i32.load (i32.const 512))))
        (if (i32.ge_u (i32.load (i32.const 516)) (i32.const 2))
          (then (global.set $how (i32.load8_u offset=1 (i32.load (i32.const 512)))))))))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (call $readMode (i32.const 6))
    (call $trapIf (i32.const 0x6b))
    (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (call $readMode (i32.const 7))
    (call $trapIf (i32.const 0x6c))
    (if (i32.eq (global.get $mode) (i32.const 0x6d))
      (then (drop (call $tick (i32.const 10)))))
    (i32.const 1))
  (func (export "proxy_on_context_create") (param $id i32) (param $parent i32)
    (if (i32.ne (local.get $parent) (i32.const 0))
      (then (call $trapIf (i32.const 0x61)))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $trapIf (i32.const 0x62)) (i32.const 0))
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (call $trapIf (i32.const 0x63)) (i32.const 0))
  (func (export "proxy_on_request_trailers") (param i32 i32) (result i32)
    (call $trapIf (i32.const 0x64)) (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (call $trapIf (i32.const 0x65)) (i32.const 0))
  (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32)
    (call $trapIf (i32.const 0x66)) (i32.const 0))
  (func (export "proxy_on_response_trailers") (param i32 i32) (result i32)
    (call $trapIf (i32.const 0x67)) (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32)
    (call $trapIf (i32.const 0x68)) (i32.const 1))
  (func (export "proxy_on_log") (param i32)
    (call $trapIf (i32.const 0x69)))
  (func (export "proxy_on_delete") (param i32)
    (call $trapIf (i32.const 0x6a)))
  (func (export "proxy_on_tick") (param i32)
    (call $trapIf (i32.const 0x6d))))
