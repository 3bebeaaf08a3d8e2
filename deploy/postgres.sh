#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for trying the replicas and for the tests.
#   deploy/postgres.sh start DIR [PORT]   initdb in DIR (if new), start, print the DSN
#   deploy/postgres.sh restart DIR        restart it (pg_ctl restart -m fast), as an operator would
#   deploy/postgres.sh stop DIR           stop it (rm -rf DIR to throw it away)
# PostgreSQL refuses to run as root: as root, the server runs as the postgres user that
# Debian's postgresql package creates (apt-get install -y postgresql).
set -euo pipefail
cmd=${1:-}; dir=${2:-}; port=${3:-55432}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
	echo "usage: $0 start DIR [PORT] | restart DIR | stop DIR" >&2; exit 2
fi
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ]; then
	echo "PostgreSQL is not installed: apt-get install -y postgresql" >&2; exit 1
fi
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
[ "$(id -u)" = 0 ] && chown postgres "$dir"
case "$cmd" in
start)
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
	fi
	as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
		-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
	echo "postgres://postgres@127.0.0.1:$port/postgres"
	;;
restart)
	as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -m fast -w restart >/dev/null
	;;
stop)
	as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
	;;
*)
	echo "usage: $0 start DIR [PORT] | restart DIR | stop DIR" >&2; exit 2
	;;
esac
