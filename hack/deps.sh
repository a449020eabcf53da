#!/usr/bin/env bash
# Installs what building and testing Skiff needs on a fresh Debian machine,
# or says exactly what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_go="$(sed -n 's/^go \([0-9.]*\).*/\1/p' go.mod)"
if ! command -v go >/dev/null 2>&1; then
	echo "error: Go is not installed; Skiff needs Go ${need_go} or newer (https://go.dev/doc/install)" >&2
	exit 1
fi

# cgo (the kubelet's container runtime) needs a C compiler.
missing=()
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
command -v git >/dev/null 2>&1 || missing+=(git)
# The kubelet's tests (which run as root) build their container image from
# Debian's static busybox; without root they skip, so it is only installed
# for root.
if [ "$(id -u)" = 0 ] && [ ! -x /bin/busybox ]; then
	missing+=(busybox-static)
fi
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing ${missing[*]} with apt-get"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	else
		echo "error: missing ${missing[*]}; install with: sudo apt-get install ${missing[*]}" >&2
		exit 1
	fi
fi

go mod download
