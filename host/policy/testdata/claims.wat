;; claims stands in for the JWT policy in the RateLimit tests: it sets the
;; request property jwt_claims.sub to the value of the request header x-sub,
;; as the JWT policy does with a validated token's claims. Built with
;; `wat2wasm claims.wat -o claims.wasm`.
(module
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_property" (func $setprop (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (data (i32.const 1024) "x-sub")
  (data (i32.const 1040) "jwt_claims\00sub")
  ;; 1100: value address, 1104: value size
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (global.set $heap (i32.const 65536))
    (if (i32.eqz (call $get (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 1100) (i32.const 1104)))
      (then
        (if (i32.gt_u (i32.load (i32.const 1104)) (i32.const 0))
          (then
            (drop (call $setprop (i32.const 1040) (i32.const 14)
              (i32.load (i32.const 1100)) (i32.load (i32.const 1104))))))))
    (i32.const 0)))
