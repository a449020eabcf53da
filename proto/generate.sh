#!/usr/bin/env bash
# generate.sh regenerates the Go code for every .proto file under proto/.
#
# The generators are pinned so that everyone produces byte-identical output:
#
#   protoc               Debian's protobuf-compiler package (bookworm: 3.21.12)
#   protoc-gen-go        the version of google.golang.org/protobuf in go.mod
#   protoc-gen-go-grpc   PROTOC_GEN_GO_GRPC_VERSION below
#
# The two Go plugins are installed into <repo>/bin/tools, never into the
# global GOPATH, so the versions on $PATH do not matter. protoc is installed
# with apt-get when it is missing and the script runs as root; otherwise the
# script says what to install and stops.
#
# Usage: proto/generate.sh   (from anywhere; `make proto` calls it)
set -euo pipefail

PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$repo/bin/tools"
cd "$repo"

# protoc-gen-go must match the protobuf runtime the generated code links
# against, so take its version from go.mod instead of repeating it here.
protobuf_version="$(go list -m -f '{{.Version}}' google.golang.org/protobuf)"

if ! command -v protoc >/dev/null 2>&1; then
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "generate.sh: installing protoc (Debian package protobuf-compiler)" >&2
		apt-get update
		DEBIAN_FRONTEND=noninteractive apt-get install -y protobuf-compiler
	else
		echo "generate.sh: protoc is missing; install it with:" >&2
		echo "  sudo apt-get update && sudo apt-get install -y protobuf-compiler" >&2
		exit 1
	fi
fi

# install_tool installs module@version into $tools unless that exact version
# is already there. A stamp file records the version of each binary.
install_tool() {
	local name="$1" pkg="$2" version="$3"
	local stamp="$tools/.$name.version"
	if [ -x "$tools/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
		return
	fi
	echo "generate.sh: installing $pkg@$version into bin/tools" >&2
	mkdir -p "$tools"
	GOBIN="$tools" GOFLAGS= go install "$pkg@$version"
	echo "$version" >"$stamp"
}

install_tool protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$protobuf_version"
install_tool protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"

echo "generate.sh: $(protoc --version), protoc-gen-go $protobuf_version, protoc-gen-go-grpc $PROTOC_GEN_GO_GRPC_VERSION" >&2

# Paths in the generated files are relative to proto/, and
# paths=source_relative puts each .pb.go next to its .proto file.
cd "$repo/proto"
mapfile -t files < <(find . -name '*.proto' | sed 's|^\./||' | sort)
PATH="$tools:$PATH" protoc \
	--proto_path=. \
	--plugin=protoc-gen-go="$tools/protoc-gen-go" \
	--plugin=protoc-gen-go-grpc="$tools/protoc-gen-go-grpc" \
	--go_out=. --go_opt=paths=source_relative \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative \
	"${files[@]}"
