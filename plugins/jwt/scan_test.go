package main

import (
	"encoding/json"
	"testing"
)

func TestScanObject(t *testing.T) {
	for _, in := range []string{
		`{}`, ` { "a" : 1 } `, `{"a":"x\"y","b":[1,{"c":null}],"d":true,"e":-1.5e3}`, `{"a":"\u00e9"}`,
		`{"a":{"b":{"c":[[]]}}}`, `{"a":1,"a":2}`,
		`{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1}x`, `[1]`, `{"a":tru}`, `{"a":"x}`, `{"a":[1,]}`, `{"a":01x}`, `{a:1}`,
	} {
		m, ok := scanObject([]byte(in))
		var want map[string]json.RawMessage
		wantOK := json.Unmarshal([]byte(in), &want) == nil
		if ok != wantOK {
			t.Errorf("%s: ok %v, encoding/json %v", in, ok, wantOK)
			continue
		}
		for k, v := range want {
			var a, b any
			_ = json.Unmarshal(v, &a)
			_ = json.Unmarshal(m[k], &b)
			if ja, _ := json.Marshal(a); string(ja) != func() string { jb, _ := json.Marshal(b); return string(jb) }() {
				t.Errorf("%s: %s = %s, want %s", in, k, m[k], v)
			}
		}
	}
	if s, ok := str([]byte(`"a\u00e9\n"`)); !ok || s != "a\u00e9\n" {
		t.Errorf("str: %q", s)
	}
	if _, ok := num([]byte(`"1"`)); ok {
		t.Error("a string read as a number")
	}
}

func FuzzScanObject(f *testing.F) {
	f.Add(`{"alg":"RS256","kid":"k"}`)
	f.Add(`{"aud":["a","b"],"exp":1e9,"x":{"y":[null,true]}}`)
	f.Fuzz(func(t *testing.T, in string) {
		_, ok := scanObject([]byte(in))
		var want map[string]json.RawMessage
		if ok && json.Unmarshal([]byte(in), &want) != nil {
			t.Fatalf("scanObject accepts what encoding/json refuses: %q", in)
		}
	})
}
