;; An unknown ABI version: refused, naming the export found.
(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_9_9"))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024)))
