#!/usr/bin/env bash
# A Skiff cluster of N nodes on this one machine, for trying things out:
# each node is a network namespace with its own address on a private
# bridge, which itself lives in a namespace of its own (the "LAN"), so
# nothing touches the machine's network. Node 0 runs `skiff server`, the
# others `skiff agent`.
#
#   sudo deploy/local-cluster.sh up [N]     # default 3 nodes
#   sudo deploy/local-cluster.sh ctl get nodes -o wide
#   sudo deploy/local-cluster.sh images-import busybox.tar
#   sudo deploy/local-cluster.sh down
#
# State lives in $SKIFF_LOCAL (default /tmp/skiff-local): one directory
# per node, with its logs in node-I/log, and the admin's kubeconfig in
# admin.kubeconfig. The agents join with the join token node 0's server
# writes at its first start, as machines of a real cluster do.
set -euo pipefail

BIN=${SKIFF_BIN:-$(cd "$(dirname "$0")/.." && pwd)/bin}
DIR=${SKIFF_LOCAL:-/tmp/skiff-local}
LAN=skiff-lan
LAN_NET=192.168.77
API=$LAN_NET.10:6443

die() { echo "error: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root: it makes network namespaces, and kubelets need root"
command -v ip >/dev/null || die "needs iproute2 (apt-get install iproute2)"
command -v nsenter >/dev/null || die "needs nsenter (apt-get install util-linux)"

# in_ns NS CMD... runs CMD in node NS's network namespace only. (ip netns
# exec would also remount /sys, hiding the cgroup file systems from
# kubelets.)
in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }

# start_in NS LOG CMD... starts CMD in the background in NS, logging to
# LOG, and records its PID (the subshell execs nsenter, which execs CMD,
# so the PID is CMD's).
start_in() {
	local ns=$1 log=$2; shift 2
	(exec nsenter --net="/run/netns/$ns" "$@" >"$log" 2>&1) &
	echo $! >"$(dirname "$log")/pid"
}

# wait_for_token waits until the server has written its join token.
wait_for_token() {
	for _ in $(seq 300); do
		[ -s "$1" ] && return
		kill -0 "$(cat "$DIR/node-0/pid")" 2>/dev/null || die "the server exited; see $DIR/node-0/log"
		sleep 0.1
	done
	die "the server wrote no join token to $1; see $DIR/node-0/log"
}

up() {
	local n=${1:-3}
	[ -x "$BIN/skiff" ] || die "no $BIN/skiff: run make build first"
	[ ! -e "$DIR" ] || die "$DIR exists: a cluster is up (run: $0 down)"
	mkdir -p "$DIR"
	echo "$n" >"$DIR/nodes"
	ip netns add $LAN
	in_ns $LAN ip link set lo up
	in_ns $LAN ip link add lan type bridge
	in_ns $LAN ip addr add $LAN_NET.1/24 dev lan
	in_ns $LAN ip link set lan up
	for i in $(seq 0 $((n - 1))); do
		local ns=skiff-node-$i addr=$LAN_NET.$((10 + i))
		ip netns add "$ns"
		in_ns "$ns" ip link set lo up
		in_ns $LAN ip link add "n$i" type veth peer name eth0 netns "$ns"
		in_ns $LAN ip link set "n$i" master lan up
		in_ns "$ns" ip addr add "$addr/24" dev eth0
		in_ns "$ns" ip link set eth0 up
		in_ns "$ns" ip route add default via $LAN_NET.1
		mkdir -p "$DIR/node-$i"
		local common=(--node-name "node-$i" --node-ip "$addr" --root-dir "$DIR/node-$i/root"
			--state-dir "$DIR/node-$i/state" --cgroup-root "/skiff-local-$i")
		if [ "$i" = 0 ]; then
			start_in "$ns" "$DIR/node-$i/log" "$BIN/skiff" server --data-dir "$DIR/node-0/root" --listen "$API" \
				--write-kubeconfig "$DIR/admin.kubeconfig" "${common[@]}"
			wait_for_token "$DIR/node-0/root/token"
		else
			start_in "$ns" "$DIR/node-$i/log" "$BIN/skiff" agent --server "https://$API" \
				--token-file "$DIR/node-0/root/token" "${common[@]}"
		fi
		echo "node-$i: $addr (log: $DIR/node-$i/log)"
	done
	echo "waiting for $n nodes to be Ready..."
	for _ in $(seq 120); do
		if [ "$(ctl get nodes 2>/dev/null | grep -c " Ready ")" = "$n" ]; then
			ctl get nodes -o wide
			echo "try: sudo $0 ctl apply -f examples/"
			return
		fi
		sleep 1
	done
	die "the nodes did not become Ready; see $DIR/node-*/log"
}

# ctl runs skiffctl against the local cluster, from node 0's namespace.
ctl() { in_ns skiff-node-0 "$BIN/skiffctl" --kubeconfig "$DIR/admin.kubeconfig" "$@"; }

images_import() {
	local n; n=$(cat "$DIR/nodes")
	for i in $(seq 0 $((n - 1))); do
		"$BIN/skiff" images import --root-dir "$DIR/node-$i/root" "$1"
	done
}

down() {
	[ -e "$DIR/nodes" ] || die "no local cluster in $DIR"
	local n; n=$(cat "$DIR/nodes")
	# Agents first, the server last; each by the PID this script recorded.
	for i in $(seq $((n - 1)) -1 0); do
		local pidfile=$DIR/node-$i/pid
		[ -e "$pidfile" ] || continue
		kill "$(cat "$pidfile")" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
	done
	# The containers outlive their kubelet by design: stop them through
	# each node's runtime state.
	for i in $(seq 0 $((n - 1))); do
		for shim in "$DIR"/node-$i/state/runtime/containers/*/shim.pid; do
			[ -e "$shim" ] && kill -9 "$(cat "$shim")" 2>/dev/null || true
		done
		for lc in "$DIR"/node-$i/state/runtime/libcontainer/*/state.json; do
			[ -e "$lc" ] || continue
			pid=$(sed -n 's/.*"init_process_pid":\([0-9]*\).*/\1/p' "$lc")
			[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
		done
	done
	sleep 1
	{ grep -o " $DIR/[^ ]*" /proc/self/mountinfo || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
	for i in $(seq 0 $((n - 1))); do
		for cg in /sys/fs/cgroup/*/skiff-local-$i /sys/fs/cgroup/skiff-local-$i; do
			[ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
		done
		ip netns del "skiff-node-$i" 2>/dev/null || true
	done
	ip netns del $LAN 2>/dev/null || true
	rm -rf "$DIR"
	echo "removed the local cluster"
}

cmd=${1:-}
shift || true
case "$cmd" in
up) up "$@" ;;
down) down ;;
ctl) ctl "$@" ;;
images-import) images_import "$@" ;;
*) die "usage: $0 up [N] | ctl ARGS... | images-import FILE.tar | down" ;;
esac
