package admin

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Role is what a caller of the admin API may do.
type Role int

// Roles, in increasing power: RoleWrite implies RoleRead.
const (
	RoleNone  Role = iota // may use only the open endpoints (/healthz, /readyz)
	RoleRead              // may read: /status, /config, /metrics, GET /reload
	RoleWrite             // may change: writes and /debug/pprof, and read
)

// String is the role's name as the tokens file writes it.
func (r Role) String() string {
	switch r {
	case RoleRead:
		return "read"
	case RoleWrite:
		return "write"
	}
	return "none"
}

// ParseRole reads "read" or "write".
func ParseRole(s string) (Role, error) {
	switch s {
	case "read":
		return RoleRead, nil
	case "write":
		return RoleWrite, nil
	}
	return RoleNone, fmt.Errorf("role %q: want read or write", clipText(s))
}

// TokenPrefix starts the tokens NewToken makes ("novaedge admin"), so that
// a leaked one is recognisable by secret scanners.
const TokenPrefix = "nvadm_"

// MinTokenLength is the least length of a plaintext token in a tokens file.
const MinTokenLength = 16

// maxTokenLine bounds one line of a tokens file.
const maxTokenLine = 4 << 10

// Tokens is a set of bearer tokens, each with a name and a role. Only the
// tokens' SHA-256 digests are kept.
type Tokens struct {
	entries []tokenEntry
	file    [sha256.Size]byte // the SHA-256 of the file they were read from (ReadTokens)
}

type tokenEntry struct {
	sum  [sha256.Size]byte
	role Role
	name string
}

// Len is the number of tokens.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// Lookup returns the name and role of token, or ok false. It compares the
// token's digest with every stored digest in constant time, whichever
// matches.
func (t *Tokens) Lookup(token string) (name string, role Role, ok bool) {
	if t == nil || token == "" {
		return "", RoleNone, false
	}
	sum := sha256.Sum256([]byte(token))
	found := -1
	for i := range t.entries {
		if subtle.ConstantTimeCompare(sum[:], t.entries[i].sum[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", RoleNone, false
	}
	return t.entries[found].name, t.entries[found].role, true
}

// ReadTokens reads a tokens file (see ParseTokens); problems name the
// file and the line.
func ReadTokens(file string) (*Tokens, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("admin tokens file: %w", err)
	}
	t, err := ParseTokens(data)
	if err != nil {
		return nil, fmt.Errorf("admin tokens file %s: %w", file, err)
	}
	t.file = sha256.Sum256(data)
	return t, nil
}

// ParseTokens reads the admin API's tokens: one token per line,
//
//	sha256:<64 hex digits> ROLE NAME   the SHA-256 of the token (what `novaedge admin token` prints)
//	TOKEN ROLE NAME                    the token itself (at least 16 printable characters), hashed on load
//
// where ROLE is read or write and NAME (letters, digits, ".", "_", "-",
// "@") names the token in the audit log. Blank lines and lines starting
// with "#" are skipped. Names and tokens are unique; a file with no token
// is an error. Errors name the line, never the token.
func ParseTokens(data []byte) (*Tokens, error) {
	t := &Tokens{}
	names := map[string]int{}
	sums := map[[sha256.Size]byte]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1024), maxTokenLine)
	var errs []error
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		e, err := parseTokenLine(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			continue
		}
		if prev, dup := names[e.name]; dup {
			errs = append(errs, fmt.Errorf("line %d: name %q is taken by line %d", n, e.name, prev))
			continue
		}
		if prev, dup := sums[e.sum]; dup {
			errs = append(errs, fmt.Errorf("line %d: the same token as line %d", n, prev))
			continue
		}
		names[e.name], sums[e.sum] = n, n
		t.entries = append(t.entries, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("a line is longer than %d bytes", maxTokenLine)
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 && len(t.entries) == 0 {
		errs = append(errs, errors.New("no tokens (want lines of \"sha256:<hex> ROLE NAME\"; `novaedge admin token` makes one)"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

func parseTokenLine(line string) (tokenEntry, error) {
	fields := strings.Fields(line)
	if len(fields) != 3 {
		return tokenEntry{}, errors.New("want TOKEN ROLE NAME (or sha256:<hex> ROLE NAME)")
	}
	var e tokenEntry
	cred := fields[0]
	if hexSum, ok := strings.CutPrefix(cred, "sha256:"); ok {
		b, err := hex.DecodeString(hexSum)
		if err != nil || len(b) != sha256.Size {
			return e, errors.New("sha256: want 64 hexadecimal digits")
		}
		copy(e.sum[:], b)
	} else {
		if len(cred) < MinTokenLength {
			return e, fmt.Errorf("a token has at least %d characters", MinTokenLength)
		}
		for i := 0; i < len(cred); i++ {
			if c := cred[i]; c <= ' ' || c >= 0x7f {
				return e, errors.New("a token is printable ASCII")
			}
		}
		e.sum = sha256.Sum256([]byte(cred))
	}
	role, err := ParseRole(fields[1])
	if err != nil {
		return e, err
	}
	e.role = role
	if !validTokenName(fields[2]) {
		return e, fmt.Errorf("name %q: want letters, digits, '.', '_', '-' or '@', at most 64", clipText(fields[2]))
	}
	e.name = fields[2]
	return e, nil
}

func validTokenName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._-@", c) >= 0) {
			return false
		}
	}
	return true
}

// clipText shortens s for an error message.
func clipText(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// NewToken makes a random token (TokenPrefix and 256 random bits) and the
// tokens-file line that grants it role under name.
func NewToken(role Role, name string) (token, line string, err error) {
	if role != RoleRead && role != RoleWrite {
		return "", "", fmt.Errorf("role %s: want read or write", role)
	}
	if !validTokenName(name) {
		return "", "", fmt.Errorf("name %q: want letters, digits, '.', '_', '-' or '@', at most 64", clipText(name))
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, TokenLine(token, role, name), nil
}

// TokenLine is the tokens-file line that grants token role under name:
// "sha256:<hex> ROLE NAME".
func TokenLine(token string, role Role, name string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:]) + " " + role.String() + " " + name
}
