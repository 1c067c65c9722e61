#!/usr/bin/env bash
# install-tinygo.sh installs TinyGo 0.39.0 for building NovaEdge's proxy-wasm
# plugins, using only Debian packages and the Go module proxy (TinyGo has no
# Debian package and its release downloads are not reachable here).
#
# Layout under the prefix ${NOVAEDGE_TOOLS:-$HOME/.cache/novaedge/tools}:
#   go1.25/            Go 1.25 toolchain (TinyGo 0.39 accepts Go 1.19-1.25 only)
#   tinygo-0.39.0/     TinyGo source tree = TINYGOROOT, with bin/tinygo built in it
#
# Every step is skipped when already done, so a second run takes seconds.
# Run it through `make tools`; use TinyGo through plugins/toolchain/tinygo.
set -Eeuo pipefail

TOOLS=${NOVAEDGE_TOOLS:-$HOME/.cache/novaedge/tools}
TINYGO_VERSION=0.39.0
GO_TOOLCHAIN=v0.0.1-go1.25.5.linux-amd64
GOROOT_DIR=$TOOLS/go1.25
TINYGO_ROOT=$TOOLS/tinygo-$TINYGO_VERSION
APT_PACKAGES=(llvm-19-dev libclang-19-dev clang-19 lld-19 libclang-rt-19-dev-wasm32
	wasi-libc binaryen wabt g++)

STEP=start
trap 'echo "install-tinygo.sh: step \"$STEP\" failed (exit $?)" >&2' ERR
step() { STEP=$1; echo "== $1"; }
skip() { echo "   already done: $1"; }

step "check the host"
[ "$(uname -s)/$(uname -m)" = Linux/x86_64 ] || { echo "needs linux/amd64, have $(uname -s)/$(uname -m)" >&2; false; }
command -v go >/dev/null || { echo "a Go toolchain (any version >= 1.21) must be on PATH to bootstrap" >&2; false; }
SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

step "apt packages"
missing=()
for p in "${APT_PACKAGES[@]}"; do
	status=$(dpkg -s "$p" 2>/dev/null || true)
	[[ $status == *"Status: install ok installed"* ]] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	skip "${APT_PACKAGES[*]}"
else
	echo "   installing: ${missing[*]}"
	$SUDO apt-get update -qq
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

step "create $TOOLS"
mkdir -p "$TOOLS"
# The bootstrap Go only downloads modules; keep it from switching toolchains or
# picking up a workspace of whatever directory we were run from.
export GOTOOLCHAIN=local GOWORK=off GOFLAGS=

# moddir prints the module cache directory of module@version, downloading it.
moddir() {
	(cd "$TOOLS" && go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
}

step "Go 1.25 toolchain ($GO_TOOLCHAIN)"
if "$GOROOT_DIR/bin/go" version 2>/dev/null | grep -q 'go1\.25\.5 '; then
	skip "$GOROOT_DIR"
else
	src=$(moddir "golang.org/toolchain@$GO_TOOLCHAIN")
	[ -n "$src" ] && [ -d "$src" ] || { echo "module download gave no directory" >&2; false; }
	rm -rf "$GOROOT_DIR" "$GOROOT_DIR.tmp"
	cp -r "$src" "$GOROOT_DIR.tmp"
	chmod -R u+w "$GOROOT_DIR.tmp"
	# The module zip does not keep the executable bits.
	chmod +x "$GOROOT_DIR.tmp"/bin/* "$GOROOT_DIR.tmp"/pkg/tool/*/*
	mv "$GOROOT_DIR.tmp" "$GOROOT_DIR"
	"$GOROOT_DIR/bin/go" version
fi

step "TinyGo $TINYGO_VERSION source"
if [ -f "$TINYGO_ROOT/.novaedge-source-ok" ]; then
	skip "$TINYGO_ROOT"
else
	src=$(moddir "github.com/tinygo-org/tinygo@v$TINYGO_VERSION")
	[ -n "$src" ] && [ -d "$src" ] || { echo "module download gave no directory" >&2; false; }
	rm -rf "$TINYGO_ROOT"
	cp -r "$src" "$TINYGO_ROOT"
	chmod -R u+w "$TINYGO_ROOT"
	# The module zip lacks TinyGo's git submodules. An empty src/net stands in
	# for the net submodule: plugins cannot import net or net/http.
	mkdir -p "$TINYGO_ROOT/src/net"
	touch "$TINYGO_ROOT/.novaedge-source-ok"
fi

step "build TinyGo $TINYGO_VERSION (about a minute)"
if [ -x "$TINYGO_ROOT/bin/tinygo" ] && [ -f "$TINYGO_ROOT/.novaedge-build-ok" ]; then
	skip "$TINYGO_ROOT/bin/tinygo"
else
	(
		cd "$TINYGO_ROOT"
		export GOROOT=$GOROOT_DIR PATH=$GOROOT_DIR/bin:$PATH
		go build -trimpath -tags llvm19 \
			-ldflags "-X github.com/tinygo-org/tinygo/goenv.TINYGOROOT=$TINYGO_ROOT" \
			-o bin/tinygo.tmp .
		mv bin/tinygo.tmp bin/tinygo
	)
	touch "$TINYGO_ROOT/.novaedge-build-ok"
fi

WRAPPER=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tinygo

step "smoke test (wasi build through the wrapper)"
if [ -f "$TINYGO_ROOT/.novaedge-smoke-ok" ]; then
	skip "smoke build"
else
	tmp=$(mktemp -d)
	printf 'package main\n\nfunc main() { println("ok") }\n' >"$tmp/main.go"
	printf 'module smoke\n\ngo 1.25\n' >"$tmp/go.mod"
	(cd "$tmp" && "$WRAPPER" build -target=wasi -scheduler=none -buildmode=wasi-legacy -no-debug -o smoke.wasm .)
	test -s "$tmp/smoke.wasm"
	rm -rf "$tmp"
	touch "$TINYGO_ROOT/.novaedge-smoke-ok"
fi

STEP="print the version"
"$WRAPPER" version
echo "TinyGo: $TINYGO_ROOT/bin/tinygo (run it through $WRAPPER)"
