#!/usr/bin/env bash
# build.sh builds NovaEdge's bundled policy plugins — every folder here with
# a main.go — with TinyGo into host/policy/bundled/<name>.wasm, which the
# novaedge binary embeds. The toolchain is pinned (`make tools`), so a
# rebuild is byte-identical to what is committed.
#
#   build.sh            rebuild every plugin in place
#   build.sh --check    rebuild into a temporary directory; fail, naming the
#                       file, if any differs from the committed one
#   build.sh NAME...    rebuild only these
set -Eeuo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
TINYGO=$here/toolchain/tinygo
dest=$repo/host/policy/bundled

check=false
if [ "${1:-}" = --check ]; then
	check=true
	shift
fi
out=$dest
if $check; then
	out=$(mktemp -d)
	trap 'rm -rf "$out"' EXIT
fi

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for d in "$here"/*/; do
		[ -f "$d/main.go" ] && names+=("$(basename "$d")")
	done
fi
[ -x "$TINYGO" ] || { echo "build.sh: $TINYGO missing" >&2; exit 1; }

# The plugins are a module of their own; keep the main module's workspace,
# GOFLAGS and toolchain switching out of their builds.
export GOWORK=off GOFLAGS=-mod=readonly GOTOOLCHAIN=local

for name in "${names[@]}"; do
	[ -f "$here/$name/main.go" ] || { echo "build.sh: no plugin named $name" >&2; exit 1; }
	echo "== $name.wasm"
	(cd "$here" && "$TINYGO" build -target=wasi -scheduler=none -buildmode=wasi-legacy -no-debug \
		-o "$out/$name.wasm" "./$name")
done

if $check; then
	bad=0
	for name in "${names[@]}"; do
		if ! cmp -s "$out/$name.wasm" "$dest/$name.wasm"; then
			echo "build.sh: host/policy/bundled/$name.wasm differs from a rebuild of plugins/$name: run 'make plugins'" >&2
			bad=1
		fi
	done
	[ $bad -eq 0 ] && echo "all ${#names[@]} bundled plugins rebuild byte-identical"
	exit $bad
fi
