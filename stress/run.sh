#!/usr/bin/env bash
# Lost-update stress over real HTTP on loopback, with real databases.
#
#   bash stress/run.sh [SUBMITS]        # default 2000 (CI); the long run: 10000
#
# (a) one counter process on SQLite, GUARD=lock (the guard's in-process lock):
#     0 lost updates;
# (b) two counter processes sharing one Postgres, GUARD=tx (the check inside
#     the handler's transaction after SELECT … FOR UPDATE), the clients' GETs
#     and POSTs spread round-robin over both: 0 lost updates;
# (c) the control: GUARD=off on SQLite, which must lose updates (--expect-lost),
#     showing that the check can fail;
# (d) the second control: two processes on the same Postgres with GUARD=lock,
#     which must lose updates too: the in-process lock cannot serialize two
#     processes, so (b)'s zero is the transaction's doing.
#
# Postgres comes from Debian's packages (installed when missing, as root) and
# runs as a throwaway cluster in a temporary folder on a free port, stopped on
# exit. Environment: STRESS_CLIENTS (default 8), STRESS_PROFILE (dev or
# release, default dev: it reuses the test build), STRESS_TIME_LIMIT (seconds
# per run, default 900), STRESS_RUNS (default "a b c d").
set -euo pipefail
cd "$(dirname "$0")/.."

SUBMITS=${1:-2000}
CLIENTS=${STRESS_CLIENTS:-8}
PROFILE=${STRESS_PROFILE:-dev}
TIME_LIMIT=${STRESS_TIME_LIMIT:-900}
RUNS=${STRESS_RUNS:-a b c d}

WORK=$(mktemp -d -t concurrency-guard-stress.XXXXXX)
PIDS=()
PGDATA=""
PG_AS=()

cleanup() {
  local status=$?
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n "$PGDATA" && -f "$PGDATA/postmaster.pid" ]]; then
    "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== building the counter and the load program ($PROFILE)"
# The same flags as the README's test command, so the test build is reused.
TARGET_DIR=${CARGO_TARGET_DIR:-target}
if [[ "$PROFILE" == release ]]; then
  cargo build --workspace --all-features --release --bin counter --bin stress
  BIN=$TARGET_DIR/release
else
  cargo build --workspace --all-features --bin counter --bin stress
  BIN=$TARGET_DIR/debug
fi

# A key ring shared by every process.
export CONCURRENCY_GUARD_KEYS="1:$(head -c 32 /dev/urandom | base64 | tr -d '\n')"

# Starts a counter process with the given environment, without waiting.
launch_counter() {
  local name=$1
  shift
  env "$@" ADDR=127.0.0.1:0 "$BIN/counter" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=($!)
  echo $! >"$WORK/$name.pid"
}

# Waits until counter NAME prints its URL; sets URL.
await_counter() {
  local name=$1
  local pid
  pid=$(cat "$WORK/$name.pid")
  for _ in $(seq 1 600); do
    URL=$(grep -o 'http://[^ ]*' "$WORK/$name.out" 2>/dev/null || true)
    if [[ -n "$URL" ]]; then
      echo "   $name: $(cat "$WORK/$name.out")"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "counter $name exited:" >&2
      cat "$WORK/$name.err" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "counter $name did not start" >&2
  cat "$WORK/$name.err" >&2
  return 1
}

start_counter() {
  launch_counter "$@"
  await_counter "$1"
}

stop_counters() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}

# Runs the load program; prints its summary with the run's name and time.
stress() {
  local name=$1
  shift
  local start=$SECONDS
  local rc=0
  "$BIN/stress" --clients "$CLIENTS" --submits "$SUBMITS" --time-limit "$TIME_LIMIT" "$@" \
    >"$WORK/$name.summary" 2>"$WORK/$name.log" || rc=$?
  echo "   $name: $(cat "$WORK/$name.summary") ($((SECONDS - start)) s)"
  sed 's/^/      /' "$WORK/$name.log"
  return $rc
}

start_postgres() {
  local initdb
  initdb=$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -z "$initdb" ]]; then
    echo "   installing Debian's postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    initdb=$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)
  fi
  PG_BIN=$(dirname "$initdb")
  PGDATA="$WORK/pgdata"
  mkdir -p "$PGDATA"
  if [[ $(id -u) -eq 0 ]]; then
    # The server refuses to run as root: the postgres user (made by the
    # Debian package) owns the throwaway cluster.
    chown postgres: "$WORK" "$PGDATA"
    chmod 755 "$WORK"
    PG_AS=(runuser -u postgres --)
  fi
  "${PG_AS[@]}" "$PG_BIN/initdb" -D "$PGDATA" -A trust -U postgres --no-sync >"$WORK/initdb.log" 2>&1 || {
    cat "$WORK/initdb.log" >&2
    return 1
  }
  local port
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 40000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      continue # taken
    fi
    if "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 \
      -o "-p $port -k $PGDATA -c listen_addresses=127.0.0.1 -c max_connections=100" \
      start >/dev/null; then
      PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
      echo "   Postgres $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $PGDATA)"
      return 0
    fi
  done
  cat "$PGDATA/server.log" >&2 || true
  return 1
}

FAILED=()
TOTAL_START=$SECONDS

for run in $RUNS; do
  case "$run" in
  a)
    echo "== (a) SQLite, one process, GUARD=lock: $SUBMITS submits, $CLIENTS clients"
    start_counter a GUARD=lock COUNTER_DB="$WORK/a.db"
    stress a --urls "$URL" || FAILED+=("(a)")
    stop_counters
    ;;
  b)
    echo "== (b) Postgres, two processes, GUARD=tx: $SUBMITS submits, $CLIENTS clients"
    [[ -n "$PGDATA" ]] || start_postgres
    # Both start at once, as behind a load balancer: creating the table and
    # its row must not fail in either.
    launch_counter b1 GUARD=tx DATABASE_URL="$PG_URL"
    launch_counter b2 GUARD=tx DATABASE_URL="$PG_URL"
    await_counter b1
    URL1=$URL
    await_counter b2
    URL2=$URL
    stress b --urls "$URL1,$URL2" || FAILED+=("(b)")
    stop_counters
    ;;
  d)
    # Shows that (b) needs GUARD=tx: the in-process lock cannot serialize
    # two processes.
    echo "== (d) control: Postgres, two processes, GUARD=lock, must lose updates: $SUBMITS submits, $CLIENTS clients"
    [[ -n "$PGDATA" ]] || start_postgres
    launch_counter d1 GUARD=lock DATABASE_URL="$PG_URL"
    launch_counter d2 GUARD=lock DATABASE_URL="$PG_URL"
    await_counter d1
    URL1=$URL
    await_counter d2
    URL2=$URL
    stress d --urls "$URL1,$URL2" --expect-lost || FAILED+=("(d)")
    stop_counters
    ;;
  c)
    echo "== (c) control: SQLite, GUARD=off, must lose updates: $SUBMITS submits, $CLIENTS clients"
    start_counter c GUARD=off COUNTER_DB="$WORK/c.db"
    stress c --urls "$URL" --expect-lost || FAILED+=("(c)")
    stop_counters
    ;;
  *)
    echo "unknown run $run (expected a, b, c or d)" >&2
    exit 2
    ;;
  esac
done

echo "== stress done in $((SECONDS - TOTAL_START)) s"
if ((${#FAILED[@]})); then
  echo "FAILED: ${FAILED[*]}" >&2
  exit 1
fi
