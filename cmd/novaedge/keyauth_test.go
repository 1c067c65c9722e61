package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateKeyAuth: validate builds and starts the bundled KeyAuth
// plugin, reading its keys file relative to the policy's file, and
// reports a keys file it cannot use.
func TestValidateKeyAuth(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets", "keys.txt"), []byte("k-0123456789 mobile-app\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := func(keysFile string) string {
		return `apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
metadata: {name: gw, namespace: ns}
spec:
  listeners: [{name: http, port: 8080, protocol: HTTP}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: keys, namespace: ns}
spec:
  type: KeyAuth
  targetRef: {kind: ProxyGateway, name: gw}
  keyAuth:
    keys: [{key: k-inline-0123456789, consumer: web}]
    keysFile: ` + keysFile + `
`
	}
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(doc("secrets/keys.txt")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(context.Background(), "validate", dir)
	if err != nil || !strings.Contains(out, "module ok: ns/keys: bundled KeyAuth plugin") {
		t.Fatalf("err = %v\n%s", err, out)
	}

	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(doc("secrets/missing.txt")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runCmd(context.Background(), "validate", dir)
	if !errors.As(err, new(exitError)) || !strings.Contains(out, "spec.keyAuth.keysFile") || !strings.Contains(out, "missing.txt") {
		t.Fatalf("err = %v, want a problem naming the keys file\n%s", err, out)
	}
}
