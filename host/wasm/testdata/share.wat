;; VM sharing: one instance hosting several root contexts. Every callback
;; appends (kind, a, b) to an event log in memory (count at 8192, entries of
;; three u32 from 8196): 1 context_create(id, parent), 2 vm_start(root, size),
;; 3 configure(root, size), 4 done(id), 5 delete(id), 6 tick(root),
;; 7 request_headers(id, count), 8 http_call_response(root, call_id),
;; 9 queue_ready(root, queue_id).
;; proxy_on_configure logs (info) and keeps the root's configuration; one starting with "R" is
;; refused, "T" sets a 5 ms tick period, "Q" registers the queue named by the
;; whole configuration, "O" is accepted once: the configuration is kept as a
;; shared data key and refused when the key exists. Each request increments a module-wide counter and adds
;; x-count, x-ctx, x-parent, x-config (its root's configuration), x-plugin
;; (plugin_name) and x-root-id (plugin_root_id). Request header x-trap traps;
;; x-call makes an HTTP call to "up"; x-enqueue enqueues "item" on its root's
;; queue. Per-context tables (indexed by id & 4095): parents at 65536,
;; configurations (address, size) at 81920, queue ids at 114688; the heap
;; starts at 131072.
(module
  (import "env" "proxy_get_buffer_bytes" (func $getbuf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $tick (param i32) (result i32)))
  (import "env" "proxy_register_shared_queue" (func $register (param i32 i32 i32) (result i32)))
  (import "env" "proxy_enqueue_shared_queue" (func $enqueue (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $prop (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_shared_data" (func $getshared (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data" (func $setshared (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_http_call" (func $httpcall (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 3)
  (data (i32.const 1024) "x-count")
  (data (i32.const 1040) "x-ctx")
  (data (i32.const 1056) "x-parent")
  (data (i32.const 1072) "x-config")
  (data (i32.const 1088) "x-plugin")
  (data (i32.const 1104) "plugin_name")
  (data (i32.const 1120) "plugin_root_id")
  (data (i32.const 1136) "x-root-id")
  (data (i32.const 1152) "x-trap")
  (data (i32.const 1168) "x-call")
  (data (i32.const 1184) "up")
  ;; serialized map {:path: /x}
  (data (i32.const 1200) "\01\00\00\00\05\00\00\00\02\00\00\00:path\00/x\00")
  (data (i32.const 1232) "x-enqueue")
  (data (i32.const 1248) "item")
  (global $count (mut i32) (i32.const 0))
  (func (export "proxy_abi_version_0_2_1"))
  (global $heap (mut i32) (i32.const 131072))
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
  ;; $ev appends an event to the log (at most 1000).
  (func $ev (param $kind i32) (param $a i32) (param $b i32)
    (local $n i32) (local $at i32)
    (local.set $n (i32.load (i32.const 8192)))
    (if (i32.ge_u (local.get $n) (i32.const 1000)) (then (return)))
    (local.set $at (i32.add (i32.const 8196) (i32.mul (local.get $n) (i32.const 12))))
    (i32.store (local.get $at) (local.get $kind))
    (i32.store offset=4 (local.get $at) (local.get $a))
    (i32.store offset=8 (local.get $at) (local.get $b))
    (i32.store (i32.const 8192) (i32.add (local.get $n) (i32.const 1))))
  ;; $itoa writes n in decimal at buf and returns its length.
  (func $itoa (param $n i32) (param $buf i32) (result i32)
    (local $len i32) (local $t i32) (local $i i32)
    (local.set $t (local.get $n))
    (local.set $len (i32.const 1))
    (block $done (loop $l
      (br_if $done (i32.lt_u (local.get $t) (i32.const 10)))
      (local.set $t (i32.div_u (local.get $t) (i32.const 10)))
      (local.set $len (i32.add (local.get $len) (i32.const 1)))
      (br $l)))
    (local.set $i (local.get $len))
    (local.set $t (local.get $n))
    (loop $w
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (i32.store8 (i32.add (local.get $buf) (local.get $i))
        (i32.add (i32.const 48) (i32.rem_u (local.get $t) (i32.const 10))))
      (local.set $t (i32.div_u (local.get $t) (i32.const 10)))
      (br_if $w (local.get $i)))
    (local.get $len))
  ;; $addnum adds request header name = decimal n.
  (func $addnum (param $name i32) (param $len i32) (param $n i32)
    (drop (call $add (i32.const 0) (local.get $name) (local.get $len) (i32.const 600)
      (call $itoa (local.get $n) (i32.const 600)))))
  ;; $has reports whether the request has header name.
  (func $has (param $name i32) (param $len i32) (result i32)
    (i32.eqz (call $get (i32.const 0) (local.get $name) (local.get $len) (i32.const 512) (i32.const 516))))
  ;; $addprop adds request header name = property path.
  (func $addprop (param $name i32) (param $len i32) (param $path i32) (param $plen i32)
    (if (i32.eqz (call $prop (local.get $path) (local.get $plen) (i32.const 512) (i32.const 516)))
      (then (drop (call $add (i32.const 0) (local.get $name) (local.get $len)
        (i32.load (i32.const 512)) (i32.load (i32.const 516)))))))
  (func (export "proxy_on_context_create") (param $id i32) (param $parent i32)
    (call $ev (i32.const 1) (local.get $id) (local.get $parent))
    (i32.store (i32.add (i32.const 65536) (i32.shl (i32.and (local.get $id) (i32.const 4095)) (i32.const 2)))
      (local.get $parent)))
  (func (export "proxy_on_vm_start") (param $root i32) (param $size i32) (result i32)
    (call $ev (i32.const 2) (local.get $root) (local.get $size))
    (i32.const 1))
  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    (local $cfg i32) (local $slot i32)
    (call $ev (i32.const 3) (local.get $root) (local.get $size))
    (if (i32.eqz (local.get $size)) (then (return (i32.const 1))))
    (if (call $getbuf (i32.const 7) (i32.const 0) (local.get $size) (i32.const 512) (i32.const 516))
      (then (return (i32.const 0))))
    (local.set $cfg (i32.load (i32.const 512)))
    (local.set $slot (i32.add (i32.const 81920) (i32.shl (i32.and (local.get $root) (i32.const 4095)) (i32.const 3))))
    (i32.store (local.get $slot) (local.get $cfg))
    (i32.store offset=4 (local.get $slot) (i32.load (i32.const 516)))
    (drop (call $log (i32.const 2) (local.get $cfg) (i32.load (i32.const 516))))
    (if (i32.eq (i32.load8_u (local.get $cfg)) (i32.const 82)) ;; "R"
      (then (return (i32.const 0))))
    (if (i32.eq (i32.load8_u (local.get $cfg)) (i32.const 79)) ;; "O"
      (then
        (if (i32.eqz (call $getshared (local.get $cfg) (i32.load (i32.const 516)) (i32.const 528) (i32.const 532) (i32.const 536)))
          (then (return (i32.const 0))))
        (drop (call $setshared (local.get $cfg) (i32.load (i32.const 516)) (local.get $cfg) (i32.load (i32.const 516)) (i32.const 0)))))
    (if (i32.eq (i32.load8_u (local.get $cfg)) (i32.const 84)) ;; "T"
      (then (drop (call $tick (i32.const 5)))))
    (if (i32.eq (i32.load8_u (local.get $cfg)) (i32.const 81)) ;; "Q"
      (then (drop (call $register (local.get $cfg) (i32.load (i32.const 516))
        (i32.add (i32.const 114688) (i32.shl (i32.and (local.get $root) (i32.const 4095)) (i32.const 2)))))))
    (i32.const 1))
  (func (export "proxy_on_done") (param $id i32) (result i32)
    (call $ev (i32.const 4) (local.get $id) (i32.const 0))
    (i32.const 1))
  (func (export "proxy_on_delete") (param $id i32)
    (call $ev (i32.const 5) (local.get $id) (i32.const 0)))
  (func (export "proxy_on_tick") (param $root i32)
    (call $ev (i32.const 6) (local.get $root) (i32.const 0)))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    (local $parent i32) (local $slot i32)
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (call $ev (i32.const 7) (local.get $ctx) (global.get $count))
    (if (call $has (i32.const 1152) (i32.const 6)) (then unreachable))
    (local.set $parent (i32.load (i32.add (i32.const 65536) (i32.shl (i32.and (local.get $ctx) (i32.const 4095)) (i32.const 2)))))
    (call $addnum (i32.const 1024) (i32.const 7) (global.get $count))
    (call $addnum (i32.const 1040) (i32.const 5) (local.get $ctx))
    (call $addnum (i32.const 1056) (i32.const 8) (local.get $parent))
    (local.set $slot (i32.add (i32.const 81920) (i32.shl (i32.and (local.get $parent) (i32.const 4095)) (i32.const 3))))
    (if (i32.load offset=4 (local.get $slot))
      (then (drop (call $add (i32.const 0) (i32.const 1072) (i32.const 8)
        (i32.load (local.get $slot)) (i32.load offset=4 (local.get $slot))))))
    (call $addprop (i32.const 1088) (i32.const 8) (i32.const 1104) (i32.const 11))
    (call $addprop (i32.const 1136) (i32.const 9) (i32.const 1120) (i32.const 14))
    (if (call $has (i32.const 1168) (i32.const 6))
      (then (drop (call $httpcall (i32.const 1184) (i32.const 2) (i32.const 1200) (i32.const 21)
        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1000) (i32.const 520)))))
    (if (call $has (i32.const 1232) (i32.const 9))
      (then (drop (call $enqueue
        (i32.load (i32.add (i32.const 114688) (i32.shl (i32.and (local.get $parent) (i32.const 4095)) (i32.const 2))))
        (i32.const 1248) (i32.const 4)))))
    (i32.const 0))
  (func (export "proxy_on_http_call_response") (param $root i32) (param $id i32) (param i32 i32 i32)
    (call $ev (i32.const 8) (local.get $root) (local.get $id)))
  (func (export "proxy_on_queue_ready") (param $root i32) (param $q i32)
    (call $ev (i32.const 9) (local.get $root) (local.get $q))))
