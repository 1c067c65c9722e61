;; An _initialize that loops forever through br_table: start-up must stop
;; at the plugin's StartTimeout.
(module
  (memory (export "memory") 1)
  (func (export "_initialize") (block $out (loop $l (br_table $l $out (i32.const 0)))))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 8192)))
