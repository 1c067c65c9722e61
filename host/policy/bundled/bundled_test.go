package bundled

import (
	"reflect"
	"testing"
)

// TestModulesBuiltOnce: Modules reads the embedded files once; later
// calls return the same map and allocate nothing.
func TestModulesBuiltOnce(t *testing.T) {
	first := Modules()
	for _, name := range []string{"cors", "jwt", "keyauth", "ratelimit", "securityheaders"} {
		if len(first[name]) == 0 {
			t.Errorf("module %q missing", name)
		}
	}
	if again := Modules(); reflect.ValueOf(again).UnsafePointer() != reflect.ValueOf(first).UnsafePointer() {
		t.Error("a second call built another map")
	}
	if n := testing.AllocsPerRun(10, func() { _ = Modules() }); n != 0 {
		t.Errorf("Modules allocates %v times per call", n)
	}
}
