package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func TestParseTokens(t *testing.T) {
	const plain = "plain-token-0123456789"
	sum := sha256.Sum256([]byte("hashed-token-0123456789"))
	hashed := "sha256:" + hex.EncodeToString(sum[:])
	for _, tc := range []struct {
		name    string
		file    string
		wantErr string         // substring of the error; "" for none
		want    map[string]any // token → "name role"
	}{
		{name: "both forms, comments and blanks",
			file: "# admin tokens\n\n" + hashed + " write ops\n  " + plain + "\tread  grafana  \n",
			want: map[string]any{"hashed-token-0123456789": "ops write", plain: "grafana read"}},
		{name: "empty file", file: "# nothing\n\n", wantErr: "no tokens"},
		{name: "two fields", file: hashed + " write\n", wantErr: "line 1: want TOKEN ROLE NAME"},
		{name: "four fields", file: hashed + " write ops extra\n", wantErr: "line 1: want TOKEN ROLE NAME"},
		{name: "bad hex", file: "sha256:xyz write ops\n", wantErr: "line 1: sha256: want 64 hexadecimal digits"},
		{name: "short digest", file: "sha256:abcd write ops\n", wantErr: "64 hexadecimal digits"},
		{name: "short plaintext token", file: "short-1 write ops\n", wantErr: "at least 16 characters"},
		{name: "bad role", file: plain + " admin ops\n", wantErr: `role "admin": want read or write`},
		{name: "bad name", file: plain + " read op/s\n", wantErr: `name "op/s"`},
		{name: "duplicate name", file: plain + " read ops\n" + hashed + " write ops\n", wantErr: "line 2: name \"ops\" is taken by line 1"},
		{name: "duplicate token", file: plain + " read a\n" + "sha256:" + func() string { s := sha256.Sum256([]byte(plain)); return hex.EncodeToString(s[:]) }() + " write b\n",
			wantErr: "line 2: the same token as line 1"},
		{name: "every problem", file: "x read a\n" + plain + " nope b\n", wantErr: "line 2: role"},
		{name: "line too long", file: strings.Repeat("a", maxTokenLine+1) + " read a\n", wantErr: "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			toks, err := ParseTokens([]byte(tc.file))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				// Errors never repeat a token.
				if strings.Contains(err.Error(), plain) || strings.Contains(err.Error(), "short-1") {
					t.Errorf("the error shows a token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if toks.Len() != len(tc.want) {
				t.Errorf("%d tokens, want %d", toks.Len(), len(tc.want))
			}
			for tok, want := range tc.want {
				name, role, ok := toks.Lookup(tok)
				if got := name + " " + role.String(); !ok || got != want {
					t.Errorf("Lookup(%q) = %q %v, want %q", tok, got, ok, want)
				}
			}
			for _, bad := range []string{"", "nope", plain + "x", hashed} {
				if _, _, ok := toks.Lookup(bad); ok {
					t.Errorf("Lookup(%q) found a token", bad)
				}
			}
		})
	}
}

func TestNewToken(t *testing.T) {
	tok, line, err := NewToken(RoleWrite, "ci@example")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) != len(TokenPrefix)+43 || strings.Contains(line, tok) {
		t.Fatalf("token %q, line %q", tok, line)
	}
	toks, err := ParseTokens([]byte(line + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if name, role, ok := toks.Lookup(tok); !ok || name != "ci@example" || role != RoleWrite {
		t.Errorf("Lookup = %q %v %v", name, role, ok)
	}
	tok2, _, _ := NewToken(RoleRead, "x")
	if tok2 == tok {
		t.Error("two tokens are equal")
	}
	for _, tc := range []struct {
		name string
		role Role
		who  string
	}{{"no role", RoleNone, "x"}, {"bad name", RoleRead, "a b"}, {"empty name", RoleRead, ""}} {
		if _, _, err := NewToken(tc.role, tc.who); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// FuzzParseTokens: the tokens-file parser never panics, never echoes a
// plaintext token in an error, and every token it accepts is found again.
func FuzzParseTokens(f *testing.F) {
	f.Add([]byte("sha256:" + strings.Repeat("ab", 32) + " write ops\n# c\n\nplain-token-0123456789 read r\n"))
	f.Add([]byte("x read a\n"))
	f.Add([]byte("sha256:zz write\n"))
	f.Add([]byte("\x00\xff read \n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		toks, err := ParseTokens(data)
		if err != nil {
			if toks != nil {
				t.Fatal("tokens with an error")
			}
			for _, line := range strings.Split(string(data), "\n") {
				fs := strings.Fields(line)
				if len(fs) > 0 && len(fs[0]) >= MinTokenLength && !strings.HasPrefix(fs[0], "sha256:") &&
					strings.Count(string(data), fs[0]) == 1 && strings.Contains(err.Error(), fs[0]) {
					t.Fatalf("the error shows the token %q: %v", fs[0], err)
				}
			}
			return
		}
		if toks.Len() == 0 {
			t.Fatal("no tokens and no error")
		}
		for _, line := range strings.Split(string(data), "\n") {
			fs := strings.Fields(line)
			if len(fs) == 3 && !strings.HasPrefix(fs[0], "sha256:") && !strings.HasPrefix(fs[0], "#") {
				if name, _, ok := toks.Lookup(fs[0]); !ok || name != fs[2] {
					t.Fatalf("token of line %q: %q %v", line, name, ok)
				}
			}
		}
	})
}
