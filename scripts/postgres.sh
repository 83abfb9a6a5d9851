#!/usr/bin/env bash
# A throwaway PostgreSQL server for a workbench store, on loopback only (no systemd needed).
#
#   scripts/postgres.sh start DIR [PORT]   initdb (first time) + start; prints the server's URL
#   scripts/postgres.sh stop DIR           stops the server started in DIR
#
# Then: workbench sweep FILE --db "$(scripts/postgres.sh url DIR)/workbench"
# (the database named in the URL is created by `start` as `workbench`).
# Needs the `postgresql` package (Debian: apt-get install --no-install-recommends postgresql).
set -euo pipefail

cmd=${1:-}
dir=${2:-}
port=${3:-55432}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: $0 start|stop|url DIR [PORT]" >&2
    exit 2
fi

bin=""
for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/pg_ctl" ]; then bin=$d; fi
done
if [ -z "$bin" ]; then
    bin=$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/pg_ctl)")
fi
if [ ! -x "$bin/pg_ctl" ]; then
    echo "$0: PostgreSQL's pg_ctl not found (install the postgresql package)" >&2
    exit 1
fi

# initdb refuses to run as root: the server then runs as the `postgres` user
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

data="$dir/data"
case "$cmd" in
start)
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"; fi
    if [ ! -f "$data/PG_VERSION" ]; then
        as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust >"$dir/initdb.log" 2>&1 || {
            cat "$dir/initdb.log" >&2
            exit 1
        }
    fi
    echo "$port" >"$dir/port"
    as_pg "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -o \
        "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" \
        start >/dev/null || {
        cat "$dir/server.log" >&2
        exit 1
    }
    if ! psql -h 127.0.0.1 -p "$port" -U postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'workbench'" | grep -q 1; then
        psql -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE workbench" >/dev/null
    fi
    echo "postgresql://postgres@127.0.0.1:$port"
    ;;
url)
    echo "postgresql://postgres@127.0.0.1:$(cat "$dir/port")"
    ;;
stop)
    if [ -f "$data/postmaster.pid" ]; then
        as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    fi
    ;;
*)
    echo "usage: $0 start|stop|url DIR [PORT]" >&2
    exit 2
    ;;
esac
