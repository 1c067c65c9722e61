package policy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/sdk/firstparty"
)

// The KeyAuth policy (plugins/keyauth) authenticates: it runs after JWT
// and before RateLimit (which may key on its consumer).
func init() {
	Register(Type{Name: configs.PolicyKeyAuth, Module: "keyauth", Order: 30, HeadersOnly: true, Authenticates: always, Config: keyAuthPluginConfig})
}

// keyAuthPluginConfig reads the policy's keys — its keys list and its
// keysFile (relative to the file that declares the policy) — and gives
// the plugin their SHA-256 only.
func keyAuthPluginConfig(p *configs.Policy) (any, error) {
	k := p.Spec.KeyAuth
	if k == nil {
		return nil, fmt.Errorf("spec.keyAuth: required for type KeyAuth")
	}
	c := firstparty.KeyAuth{Header: k.Header, Query: k.Query, HideCredentials: k.HideCredentials, ConsumerHeader: k.ConsumerHeader}
	seen := map[string]string{} // hash → where
	add := func(where, sum, consumer string) error {
		sum = strings.ToLower(sum)
		if prev, dup := seen[sum]; dup {
			return fmt.Errorf("%s: the same key as %s", where, prev)
		}
		seen[sum] = where
		c.Keys = append(c.Keys, firstparty.APIKey{SHA256: sum, Consumer: consumer})
		return nil
	}
	for i, key := range k.Keys {
		sum := key.SHA256
		if key.Key != "" {
			sum = hashKey(key.Key)
		}
		if err := add(fmt.Sprintf("spec.keyAuth.keys[%d]", i), sum, key.Consumer); err != nil {
			return nil, err
		}
	}
	if k.KeysFile != "" {
		data, err := readExternal(p, k.KeysFile)
		if err != nil {
			return nil, fmt.Errorf("spec.keyAuth.keysFile: %w", err)
		}
		entries, err := parseKeysFile(data)
		if err != nil {
			return nil, fmt.Errorf("spec.keyAuth.keysFile %s: %w", k.KeysFile, err)
		}
		for _, e := range entries {
			if err := add(fmt.Sprintf("%s line %d", k.KeysFile, e.line), hashKey(e.key), e.consumer); err != nil {
				return nil, err
			}
		}
	}
	if len(c.Keys) == 0 {
		return nil, fmt.Errorf("spec.keyAuth: no keys (keys is empty and keysFile %s has none)", k.KeysFile)
	}
	return c, nil
}

func hashKey(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

type keyEntry struct {
	key, consumer string
	line          int
}

// parseKeysFile reads a keys file: one "KEY CONSUMER" per line (the
// consumer's name may contain spaces), blank lines and lines starting
// with "#" skipped.
func parseKeysFile(data []byte) ([]keyEntry, error) {
	var out []keyEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.IndexAny(line, " \t")
		if i < 0 {
			return nil, fmt.Errorf("line %d: want KEY CONSUMER", n)
		}
		key, consumer := line[:i], strings.TrimSpace(line[i+1:])
		if consumer == "" {
			return nil, fmt.Errorf("line %d: want KEY CONSUMER", n)
		}
		if msg := configs.APIKeyProblem(key); msg != "" {
			return nil, fmt.Errorf("line %d: %s", n, msg)
		}
		if strings.ContainsAny(consumer, "\x00\r") {
			return nil, fmt.Errorf("line %d: invalid consumer name", n)
		}
		out = append(out, keyEntry{key: key, consumer: consumer, line: n})
	}
	return out, sc.Err()
}
