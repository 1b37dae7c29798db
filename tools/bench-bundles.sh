#!/usr/bin/env bash
# Bundle benchmark (issue #3): export and import of 1,000 interviews with 10 h of synthetic
# audio, against `zstd -3 | age` and `age -d | zstd -d` on the same bytes, embedded archive and
# PostgreSQL side by side. Results and how to read them: docs/performance.md.
#
#   tools/bench-bundles.sh                                    # full size (about 1.2 GB of audio)
#   TESTIMONY_BENCH_AUDIO_HOURS=1 tools/bench-bundles.sh      # quick
#
# Starts a throw-away PostgreSQL cluster on loopback (as ./run test does, but with PostgreSQL's
# default durability: fsync on), runs `cargo bench -p testimony-archive --bench bundle`, and
# deletes the cluster on exit. Other knobs: see crates/archive/benches/bundle.rs
# (TESTIMONY_BENCH_INTERVIEWS, _AUDIO_HOURS_SMALL, _CLIP_SECONDS, _DIR). Needs age, zstd, time
# and postgresql (Debian packages). Set TESTIMONY_BENCH_POSTGRES yourself to use another server.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in age zstd /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "needs $tool (Debian: apt-get install age zstd time)" >&2; exit 1; }
done

PG_TMP=""
PG_BIN=""
pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
stop_postgres() {
  [ -n "$PG_TMP" ] || return 0
  if [ -f "$PG_TMP/data/postmaster.pid" ]; then
    (cd "$PG_TMP" && pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m fast -w stop >/dev/null 2>&1) || true
  fi
  rm -rf "$PG_TMP"
  PG_TMP=""
}

if [ -z "${TESTIMONY_BENCH_POSTGRES:-}" ]; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  [ -x "$PG_BIN/initdb" ] || { echo "PostgreSQL server binaries not found (Debian: postgresql)" >&2; exit 1; }
  tmp="${TMPDIR:-/tmp}"
  [ "$(id -u)" -ne 0 ] || tmp=/tmp
  PG_TMP=$(mktemp -d "$tmp/testimony-bench-pg.XXXXXX")
  trap stop_postgres EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$PG_TMP"; fi
  (cd "$PG_TMP" && pg_as_owner "$PG_BIN/initdb" -D "$PG_TMP/data" -U testimony --auth=trust -E UTF8 --no-locale >"$PG_TMP/initdb.log" 2>&1) \
    || { cat "$PG_TMP/initdb.log" >&2; exit 1; }
  started=""
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 40000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
    if (cd "$PG_TMP" && pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_TMP" start >/dev/null); then
      started=1
      break
    fi
  done
  [ -n "$started" ] || { echo "PostgreSQL did not start:" >&2; cat "$PG_TMP/server.log" >&2 || true; exit 1; }
  echo "PostgreSQL: $("$PG_BIN/postgres" --version), throw-away cluster on 127.0.0.1:$port (fsync on)" >&2
  export TESTIMONY_BENCH_POSTGRES="host=127.0.0.1 port=$port user=testimony dbname=postgres"
fi

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB RAM; uptime before: $(uptime)"
cargo bench -p testimony-archive --bench bundle --locked
echo "uptime after: $(uptime)"
