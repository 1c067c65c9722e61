package configs

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// TestGoodGolden loads each case under testdata/good (a .yaml file or a
// directory) and the reference use case, and compares the normalized
// snapshot with <case>.golden.json.
func TestGoodGolden(t *testing.T) {
	cases := []struct{ name, path string }{
		{name: "reference", path: "testdata/reference"},
	}
	entries, err := os.ReadDir("testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".golden.json") {
			continue
		}
		cases = append(cases, struct{ name, path string }{
			name: strings.TrimSuffix(e.Name(), ".yaml"),
			path: filepath.Join("testdata/good", e.Name()),
		})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Load(tc.path)
			if err != nil {
				t.Fatalf("Load(%q):\n%v", tc.path, err)
			}
			got, err := s.JSON()
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata/good", tc.name+".golden.json"), got)
			checkRoundTrip(t, s)
		})
	}
}

// TestBadGolden loads each testdata/bad/<case>.yaml and compares the
// problems, one per line, with <case>.golden.txt.
func TestBadGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			s, err := LoadFiles([]File{{Name: filepath.Base(file), Data: data}})
			if s != nil || err == nil {
				t.Fatalf("LoadFiles succeeded; want problems")
			}
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error is %T, want non-empty Problems: %v", err, err)
			}
			checkGolden(t, strings.TrimSuffix(file, ".yaml")+".golden.txt", []byte(err.Error()+"\n"))
		})
	}
}

// checkGolden compares got with the golden file, or rewrites the file
// with -update.
func checkGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run go test -update to accept):\n%s", golden, lineDiff(string(want), string(got)))
	}
}

// lineDiff shows the first lines that differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 10; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
			shown++
		}
	}
	return b.String()
}
