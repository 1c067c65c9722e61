#!/usr/bin/env bash
# build.sh builds the proxy-wasm test plugins of the host's conformance tests
# into the .wasm files committed beside their sources:
#
#   tinygo/<name>/ -> tinygo/<name>.wasm   TinyGo 0.39, tetratelabs SDK v0.24.0
#   gosdk/headers/ -> gosdk/headers.wasm   Go 1.25.5 (wasip1, c-shared), official-Go SDK
#   c/headers.c    -> c/headers.wasm       clang-19, raw ABI, no libc
#   as/assembly/headers.ts -> as/headers.wasm
#                    AssemblyScript 0.14.9, @solo-io/proxy-runtime 0.1.8 (npm,
#                    pinned by as/package-lock.json; `npm ci` installs them
#                    into as/node_modules when that lockfile changed)
#
# The toolchains are pinned (`make tools` installs TinyGo and Go 1.25.5 under
# ${NOVAEDGE_TOOLS:-$HOME/.cache/novaedge/tools}, and the AssemblyScript
# compiler and SDK with `npm ci`), so a rebuild is
# byte-identical to what is committed.
#
#   build.sh            rebuild every module in place
#   build.sh --check    rebuild into a temporary directory and fail, naming the
#                       file, if any differs from the committed one
#   build.sh NAME...    rebuild only these (tinygo folder names, gosdk, c, as)
#   build.sh --deps     only install the AssemblyScript toolchain (npm ci)
set -Eeuo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
TINYGO=$repo/plugins/toolchain/tinygo
TOOLS=${NOVAEDGE_TOOLS:-$HOME/.cache/novaedge/tools}
GO125=$TOOLS/go1.25
CLANG=${CLANG:-clang-19}

# as_deps installs as/package-lock.json's packages into as/node_modules with
# `npm ci`, unless the lockfile they were installed from is the same
# (as/node_modules/.novaedge-lock): idempotent, and a changed lockfile always
# reinstalls.
as_deps() {
	command -v npm >/dev/null || { echo "build.sh: npm missing: run 'make tools'" >&2; exit 1; }
	local dir=$here/as
	if [ -x "$dir/node_modules/.bin/asc" ] && cmp -s "$dir/package-lock.json" "$dir/node_modules/.novaedge-lock"; then
		return
	fi
	echo "== npm ci (host/wasm/testdata/as)"
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
	cp "$dir/package-lock.json" "$dir/node_modules/.novaedge-lock"
}

if [ "${1:-}" = --deps ]; then
	as_deps
	exit 0
fi

check=false
if [ "${1:-}" = --check ]; then
	check=true
	shift
fi
out=$here
if $check; then
	out=$(mktemp -d)
	trap 'rm -rf "$out"' EXIT
	mkdir -p "$out/tinygo" "$out/gosdk" "$out/c" "$out/as"
fi

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for d in "$here"/tinygo/*/; do names+=("$(basename "$d")"); done
	names+=(gosdk c as)
fi

for tool in "$TINYGO" "$GO125/bin/go"; do
	[ -x "$tool" ] || { echo "build.sh: $tool missing: run 'make tools'" >&2; exit 1; }
done
command -v "$CLANG" >/dev/null || { echo "build.sh: $CLANG missing: run 'make tools'" >&2; exit 1; }

# The plugins are modules of their own; keep the main module's workspace,
# GOFLAGS and toolchain switching out of their builds.
export GOWORK=off GOFLAGS=-mod=readonly GOTOOLCHAIN=local

built=()
for name in "${names[@]}"; do
	case $name in
	gosdk)
		echo "== gosdk/headers.wasm"
		(cd "$here/gosdk/headers" && GOROOT=$GO125 PATH=$GO125/bin:$PATH GOOS=wasip1 GOARCH=wasm \
			go build -buildmode=c-shared -trimpath -buildvcs=false -o "$out/gosdk/headers.wasm" .)
		built+=(gosdk/headers.wasm)
		;;
	as)
		as_deps
		echo "== as/headers.wasm"
		# --use abort=abort_proc_exit: the SDK's abort logs the message at
		# critical level and exits through wasi_unstable.proc_exit instead of
		# importing env.abort.
		(cd "$here/as" && node_modules/.bin/asc assembly/headers.ts -b "$out/as/headers.wasm" \
			--use abort=abort_proc_exit --optimize)
		built+=(as/headers.wasm)
		;;
	c)
		echo "== c/headers.wasm"
		(cd "$here/c" && "$CLANG" --target=wasm32 -O2 -nostdlib -Wall -Wextra -Wno-unused-parameter -Werror \
			-Wl,--no-entry -Wl,--export-dynamic -o "$out/c/headers.wasm" headers.c && chmod 644 "$out/c/headers.wasm")
		built+=(c/headers.wasm)
		;;
	*)
		[ -f "$here/tinygo/$name/main.go" ] || { echo "build.sh: no plugin named $name" >&2; exit 1; }
		# A VARIANTS file lists several builds of one source: "OUTPUT VALUE"
		# lines, each built with -X main.module=VALUE into OUTPUT.wasm.
		variants=("$name -")
		if [ -f "$here/tinygo/$name/VARIANTS" ]; then
			mapfile -t variants < <(grep -v '^#' "$here/tinygo/$name/VARIANTS")
		fi
		for v in "${variants[@]}"; do
			read -r output value <<<"$v"
			flags=()
			[ "$value" = - ] || flags=(-ldflags "-X main.module=$value")
			echo "== tinygo/$output.wasm"
			(cd "$here/tinygo" && "$TINYGO" build -target=wasi -scheduler=none -buildmode=wasi-legacy -no-debug \
				"${flags[@]}" -o "$out/tinygo/$output.wasm" "./$name")
			built+=("tinygo/$output.wasm")
		done
		;;
	esac
done

if $check; then
	bad=0
	for f in "${built[@]}"; do
		if ! cmp -s "$out/$f" "$here/$f"; then
			echo "build.sh: host/wasm/testdata/$f differs from a rebuild: run 'make plugins-testdata'" >&2
			bad=1
		fi
	done
	[ $bad -eq 0 ] && echo "all ${#built[@]} modules rebuild byte-identical"
	exit $bad
fi
