#!/usr/bin/env bash
# bench/run.sh — authwatch and FreeRADIUS side by side, on this machine, in
# one run. Run it by hand from a checkout (CI runs only the short smoke test
# of the load tool): it installs FreeRADIUS and sqlite3 when they are missing
# (apt-get; root or sudo), builds authwatch, measures, and writes the tables
# between the markers in docs/BENCHMARKS.md.
#
#   bench/run.sh                    full run, about 5 minutes
#   STEP=3s bench/run.sh            shorter steps: quicker, noisier
#   ONLY=websocket bench/run.sh     some measurements: accounting, websocket, memory
#   PROFILE=1 bench/run.sh          also a CPU profile of the daemon under load
#   KEEP=1 bench/run.sh             keep the generated configs, logs and databases
#
# Everything listens on 127.0.0.1 ports picked at random; nothing leaves the
# machine. Stop other work on the machine first: the load generator and the
# server share its cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:$HOME/go/bin"

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
packages=()
command -v freeradius >/dev/null || packages+=(freeradius)
command -v radclient >/dev/null || packages+=(freeradius-utils)
command -v sqlite3 >/dev/null || packages+=(sqlite3)
if ((${#packages[@]})); then
	echo "installing: ${packages[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
# Debian 12 ships rlm_sql_sqlite in the freeradius package itself; other
# releases may split it out.
if ! dpkg -L freeradius 2>/dev/null | grep -q 'rlm_sql_sqlite\.so$' && [ ! -e /usr/lib/freeradius/rlm_sql_sqlite.so ]; then
	echo "bench: rlm_sql_sqlite.so not found; install the package that provides it (apt-file search rlm_sql_sqlite)" >&2
	exit 1
fi
if [ ! -r /etc/freeradius/3.0/mods-config/sql/main/sqlite/queries.conf ]; then
	echo "bench: /etc/freeradius/3.0/mods-config/sql/main/sqlite/ is missing (package freeradius-config)" >&2
	exit 1
fi

go version
# 1,000 websocket subscribers: as many sockets on each side.
ulimit -n 65536 2>/dev/null || ulimit -n 4096 2>/dev/null || true

work=$(mktemp -d -t authwatch-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
go build -o "$work/authwatch" ./cmd/authwatch

args=(-authwatch "$work/authwatch" -out docs/BENCHMARKS.md -step "${STEP:-10s}" -only "${ONLY:-accounting,websocket,memory}")
[ -n "${KEEP:-}" ] && args+=(-keep)
go run ./bench/sidebyside "${args[@]}"

if [ -n "${PROFILE:-}" ]; then
	# The daemon in-process under the same closed-loop load, profiled; the
	# load generator's own share shows up as authwatch/internal/load.
	go test -run '^$' -bench Daemon -benchtime 200000x -cpuprofile "$work/cpu.out" -o "$work/load.test" ./internal/load/
	go tool pprof -top -nodecount 25 "$work/load.test" "$work/cpu.out"
	go tool pprof -top -cum -nodecount 40 "$work/load.test" "$work/cpu.out"
	if [ -n "${KEEP:-}" ]; then
		cp "$work/cpu.out" "$work/load.test" "${TMPDIR:-/tmp}/"
		echo "profile kept: ${TMPDIR:-/tmp}/cpu.out (binary ${TMPDIR:-/tmp}/load.test)"
	fi
fi
