#!/bin/sh
# SPDX-License-Identifier: MIT
# Several nodes against one (RESULTS.md, "Several nodes"): the same
# tutti-bench scenarios on one node with SQLite (a file, durable), one node
# on NATS JetStream, and three nodes on one nats-server behind the bench's
# URL list (writer on node 1, subscribers round robin, late joiner on node
# 3). One JSON line per run on stdout, prefixed with its setup. Usage:
#   tests/bench/cluster.sh BUILD_DIR [RUNS]      (a Release build; RUNS: 3)
# MANY_ONLY=1: only the many-states runs.
# Needs nats-server (Debian's package). Every server is started here and
# measured through --url (so the bench is pinned to CPU 1, the servers are
# not), the same way for the three setups. About 2 minutes per run.
set -eu
build=$1
runs=${2:-3}
bench="$build/tutti-bench"
server="$build/tutti-server"
dir=$(mktemp -d /tmp/tutti-cluster-bench-XXXXXX)
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

nport=$(free_port)
nats-server -a 127.0.0.1 -p "$nport" -js -sd "$dir/js" >"$dir/nats.log" 2>&1 &
pids="$pids $!"
for _ in $(seq 50); do grep -q 'Server is ready' "$dir/nats.log" && break; sleep 0.1; done
nats="nats://127.0.0.1:$nport"
mkdir -p "$dir/schemas" "$dir/web"

# N nodes (1 or 3) on one engine or SQLite: $1 count, $2 --engine URL or
# --db PATH (then $3 its value); sets $urls and $nodepids
start_nodes() {
	n=$1
	shift
	urls="" nodepids=""
	for i in $(seq "$n"); do
		p=$(free_port)
		"$server" --host 127.0.0.1 --port "$p" --open --max-rate 0 -q --no-qr \
			--max-conns-per-addr 0 --max-new-sessions-per-addr 0 \
			--schemas "$dir/schemas" --web "$dir/web" --node-id "$i" "$@" \
			>"$dir/node$i.log" 2>&1 &
		nodepids="$nodepids $!"
		for _ in $(seq 100); do grep -q 'listening on' "$dir/node$i.log" && break; sleep 0.1; done
		urls="$urls${urls:+,}ws://127.0.0.1:$p/"
	done
	pids="$pids $nodepids"
}
stop_nodes() { for p in $nodepids; do kill "$p"; wait "$p" 2>/dev/null || true; done; }

# one setup's scenarios against $urls: $1 label
scenarios() {
	[ -n "${MANY_ONLY:-}" ] || for sc in "fanout --subs 1" "fanout --subs 300" "late_join --history 1000 --joins 20"; do
		# shellcheck disable=SC2086
		echo "$1 $("$bench" -q $sc --duration 5 --url "$urls")"
	done
	# many states: 4 writers at once, each on a state of its own (each
	# bench creates one), on the nodes in turn: the sum of their sets/s
	many=""
	rot=$urls
	for w in 1 2 3 4; do
		"$bench" -q fanout --subs 1 --duration 5 --url "$rot" >"$dir/many$w.json" &
		many="$many $!"
		rot=$(echo "$rot" | awk -F, '{ for (i = 2; i <= NF; i++) printf "%s,", $i; print $1 }')
	done
	for p in $many; do wait "$p" || true; done
	echo "$1 many_states $(cat "$dir"/many*.json | tr '\n' ' ')"
}

for run in $(seq "$runs"); do
	start_nodes 1 --db "$dir/bench$run.db"
	scenarios sqlite
	stop_nodes
	start_nodes 1 --engine "$nats/one$run"
	scenarios nats1
	stop_nodes
	start_nodes 3 --engine "$nats/three$run"
	scenarios nats3
	stop_nodes
done
