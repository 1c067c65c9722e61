package wasm

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
)

// wasmModule builds a module from sections (id, payload) in order.
func wasmModule(secs ...section) []byte {
	b := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range secs {
		b = append(b, s.id)
		b = appendU32(b, uint32(len(s.payload)))
		b = append(b, s.payload...)
	}
	return b
}

// vec is a vector payload of n entries written out in entries.
func vec(n int, entries ...byte) []byte { return append(appendU32(nil, uint32(n)), entries...) }

// oneFunc is a module with one type () -> (), one mutable i32 global, and
// one function of that type with body (no locals), exported as "f".
func oneFunc(body ...byte) []byte {
	return wasmModule(
		section{secType, vec(1, 0x60, 0, 0)},
		section{secFunction, vec(1, 0)},
		section{secGlobal, vec(1, 0x7f, 0x01, 0x41, 0x00, 0x0b)},
		section{secExport, vec(1, append(appendName(nil, "f"), 0x00, 0)...)},
		section{secCode, vec(1, append(appendU32(nil, uint32(len(body)+1)), append([]byte{0}, body...)...)...)},
	)
}

// validates reports whether wazero accepts code.
func validates(t *testing.T, code []byte) error {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer r.Close(ctx)
	cm, err := r.CompileModule(ctx, code)
	if err == nil {
		cm.Close(ctx)
	}
	return err
}

// TestMeterRefusesTampering: a module cannot reach the meter. Each case is
// a module that wazero refuses as it is (so no guest can be written that
// way), and that the metering must not turn into a valid one by giving
// meaning to an index the module did not have, or that imports the
// meter's namespace itself.
func TestMeterRefusesTampering(t *testing.T) {
	refuelImport := append(appendName(appendName(nil, meterModule), meterRefuel), 0x00, 0x01)
	fuelImport := append(appendName(appendName(nil, meterModule), "fuel"), 0x03, 0x7e, 0x01)
	tests := []struct {
		name    string
		code    []byte
		invalid bool // wazero refuses the module as it is
		want    string
	}{
		{"sets the fuel by its index", oneFunc(0x42, 0x00, 0x24, 0x01, 0x0b), true, "global 1 does not exist"},
		{"reads the fuel by its index", oneFunc(0x23, 0x01, 0x1a, 0x0b), true, "global 1 does not exist"},
		{"call_indirect of the refuel type", oneFunc(0x41, 0x00, 0x11, 0x01, 0x00, 0x1a, 0x0b), true, "call_indirect of type 1"},
		{"block of the refuel type", oneFunc(0x02, 0x01, 0x0b, 0x0b), true, "block type 1"},
		{"exports the fuel", wasmModule(
			section{secType, vec(1, 0x60, 0, 0)},
			section{secGlobal, vec(1, 0x7f, 0x01, 0x41, 0x00, 0x0b)},
			section{secExport, vec(1, append(appendName(nil, "fuel"), 0x03, 1)...)},
		), true, "global 1"},
		{"imports refuel", wasmModule(
			section{secType, vec(2, 0x60, 0, 0, 0x60, 0, 1, 0x7e)},
			section{secImport, vec(1, refuelImport...)},
		), false, "may not be imported"},
		{"imports a global of the meter", wasmModule(
			section{secImport, vec(1, fuelImport...)},
		), false, "may not be imported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := validates(t, tc.code); (err != nil) != tc.invalid {
				t.Fatalf("wazero on the module as it is: %v", err)
			}
			out, err := meter(tc.code)
			if err == nil {
				t.Fatalf("metered; wazero on the result: %v", validates(t, out))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// meterCorpus is every module the tests and the gateway run: the test
// plugins of every toolchain and the bundled policies.
func meterCorpus(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for _, pat := range []string{"testdata/*.wasm", "testdata/*/*.wasm", "../policy/bundled/*.wasm"} {
		files, _ := filepath.Glob(pat)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[f] = b
		}
	}
	if len(out) < 10 {
		t.Fatalf("only %d modules found", len(out))
	}
	return out
}

// TestMeterEveryModule: every module of the corpus meters into one wazero
// accepts, with the same exports, the imports plus refuel, one global more
// and a charge in every function; metering a metered module is refused
// (it imports the meter).
func TestMeterEveryModule(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer r.Close(ctx)
	for name, code := range meterCorpus(t) {
		t.Run(name, func(t *testing.T) {
			out, err := meter(code)
			if err != nil {
				t.Fatal(err)
			}
			before, err := r.CompileModule(ctx, code)
			if err != nil {
				t.Fatal(err)
			}
			defer before.Close(ctx)
			after, err := r.CompileModule(ctx, out)
			if err != nil {
				t.Fatalf("metered module refused: %v", err)
			}
			defer after.Close(ctx)
			if a, b := len(after.ExportedFunctions()), len(before.ExportedFunctions()); a != b {
				t.Errorf("%d exported functions, %d before", a, b)
			}
			for n, f := range before.ExportedFunctions() {
				g := after.ExportedFunctions()[n]
				if g == nil || len(g.ParamTypes()) != len(f.ParamTypes()) || len(g.ResultTypes()) != len(f.ResultTypes()) {
					t.Errorf("export %s changed", n)
				}
			}
			imps := after.ImportedFunctions()
			if len(imps) != len(before.ImportedFunctions())+1 {
				t.Fatalf("%d imports, %d before", len(imps), len(before.ImportedFunctions()))
			}
			last := imps[len(imps)-1]
			if mod, fn, _ := last.Import(); mod != meterModule || fn != meterRefuel {
				t.Errorf("last import %s.%s", mod, fn)
			}
			if !bytes.Contains(out, []byte{0x42, 0x00, 0x53, 0x04, 0x40, opCall}) {
				t.Error("no charge in the metered code")
			}
			if _, err := meter(out); err == nil || !strings.Contains(err.Error(), meterModule) {
				t.Errorf("metering twice: %v", err)
			}
		})
	}
}

// TestMeterSectionsCreated: a module without types, imports or globals
// gets them, in the order the binary format requires.
func TestMeterSectionsCreated(t *testing.T) {
	empty := wasmModule()
	out, err := meter(empty)
	if err != nil {
		t.Fatal(err)
	}
	if err := validates(t, out); err != nil {
		t.Fatalf("metered empty module: %v", err)
	}
	// Code that loops, without a type section of its own for refuel.
	loop := oneFunc(0x03, 0x40, 0x0b, 0x0b) // loop end
	out, err = meter(loop)
	if err != nil {
		t.Fatal(err)
	}
	if err := validates(t, out); err != nil {
		t.Fatalf("metered loop: %v", err)
	}
}

// FuzzMeter: the meter never panics; a module wazero accepts stays
// accepted once metered; and a module wazero refuses is refused by the
// meter or still refused once metered — metering never makes an invalid
// module valid (which is how a guest would reach the meter).
func FuzzMeter(f *testing.F) {
	for _, code := range meterCorpus(f) {
		if len(code) < 64<<10 {
			f.Add(code)
		}
	}
	f.Add(oneFunc(0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b))
	f.Add(oneFunc(0x42, 0x00, 0x24, 0x01, 0x0b))
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer r.Close(ctx)
	f.Fuzz(func(t *testing.T, code []byte) {
		out, err := meter(code)
		if err != nil && malformed(err) {
			// Not a binary at all: wazero refuses it too, but may first
			// allocate what its counts declare (seconds and gigabytes for
			// a few bytes), which stalls the fuzzer.
			return
		}
		before, verr := r.CompileModule(ctx, code)
		if verr == nil {
			before.Close(ctx)
		}
		if err != nil {
			if verr == nil && !strings.Contains(err.Error(), "may not be imported") {
				t.Fatalf("wazero accepts it, the meter refuses it: %v", err)
			}
			return
		}
		after, aerr := r.CompileModule(ctx, out)
		if aerr == nil {
			after.Close(ctx)
		}
		switch {
		case verr == nil && aerr != nil:
			t.Fatalf("valid module invalid once metered: %v", aerr)
		case verr != nil && aerr == nil:
			t.Fatalf("invalid module (%v) valid once metered", verr)
		}
	})
}

// malformed reports whether the meter refused a module because its binary
// could not be read (as opposed to a module it read and judged).
func malformed(err error) bool {
	msg := err.Error()
	for _, s := range []string{errShort.Error(), "malformed", "too long", "too large", "not a wasm binary"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// TestCompileRefusesDeclaredCounts: a module of a few bytes whose import
// section declares two billion imports is refused by Compile with the
// meter's error. It never reaches wazero, which makes room for the declared
// count first: that exhausted the process's memory (a fatal error that
// crashes the gateway; FuzzMeter found it).
func TestCompileRefusesDeclaredCounts(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	for _, id := range []byte{secType, secImport, secFunction, secGlobal, secExport, secElement, secCode, secData} {
		code := wasmModule(section{id, append(appendU32(nil, 1<<31-1), 0x00, 0x00)})
		_, err := r.Compile(context.Background(), code)
		if err == nil || !strings.Contains(err.Error(), "declares 2147483647 entries in 7 bytes") {
			t.Errorf("section %d: err = %v", id, err)
		}
	}
}
