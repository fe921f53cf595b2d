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
# (e) two counter processes sharing one Postgres, GUARD=pglock: the same
#     handler as GUARD=lock (a plain UPDATE), the guard's record lock in
#     Postgres (PgAdvisoryLock): 0 lost updates;
# (c) the control: GUARD=off on SQLite, which must lose updates (--expect-lost),
#     showing that the check can fail;
# (d) the second control: two processes on the same Postgres with GUARD=lock,
#     which must lose updates too: the in-process lock cannot serialize two
#     processes, so (b)'s and (e)'s zeros are the transaction's and the
#     Postgres lock's doing;
# (f) fault: (e) with Postgres restarted in the middle of the run: requests
#     during the outage and the lock's restart grace (2.5 s here,
#     PG_RESTART_GRACE_MS: this handler writes in milliseconds) get 5xx or
#     503 (counted, allowed), never a 2xx that did not write; 0 lost updates
#     after recovery (the grace lets handlers whose lock the restart freed
#     finish before another process takes it);
# (g) two counter processes on one SQLite file, GUARD=tx (the check inside
#     the handler's transaction, opened with BEGIN IMMEDIATE: SQLite's file
#     lock spans the processes of the machine): 0 lost updates;
# (h) the control: two processes on one SQLite file, GUARD=lock, must lose
#     updates: the in-process lock does not span processes, so (g)'s zero
#     is the transaction's doing;
# (m) the main example as shipped (`cargo run --example inventory`): two
#     processes on one Postgres, the clients submitting its edit form of
#     item 1 (every control as the page shows it, one mark more in the
#     description: stress/inventory.rs), spread over both: 0 lost updates;
# (n) the control for (m): the same two processes with their record locks
#     in-process (INVENTORY_RECORD_LOCK=in-process), which must lose updates;
# (t) the Postgres lock's fault tests (stress/tests/pglock.rs: a panicking
#     handler, a client gone mid-request, a database down, processes
#     mid-rotation, the restart grace; then, alone, Postgres restarted while
#     a handler holds the lock), with PG_URL and PG_RESTART_CMD set.
#
# At the end one table: run, processes, lock backend, clients, submits,
# accepted, conflicts, errors, lost updates, and what the run must show.
#
# Postgres comes from Debian's packages (installed when missing, as root) and
# runs as a throwaway cluster in a temporary folder on a free port, stopped on
# exit. Environment: STRESS_CLIENTS (default 8), STRESS_PROFILE (dev or
# release, default dev: it reuses the test build), STRESS_TIME_LIMIT (seconds
# per run, default 900), STRESS_RUNS (default "a b e m n f c d g h t"),
# STRESS_PG_GRACE_MS (the restart grace of the counters and the main
# example, default 2500).
set -euo pipefail
cd "$(dirname "$0")/.."

SUBMITS=${1:-2000}
CLIENTS=${STRESS_CLIENTS:-8}
PROFILE=${STRESS_PROFILE:-dev}
TIME_LIMIT=${STRESS_TIME_LIMIT:-900}
RUNS=${STRESS_RUNS:-a b e m n f c d g h t}
# The Postgres lock's restart grace in the counters (PG_RESTART_GRACE_MS):
# the counter's handler writes in milliseconds, so a few seconds cover it.
# STRESS_PG_GRACE_MS=0 switches it off (to see (f) without it).
PG_GRACE_MS=${STRESS_PG_GRACE_MS:-2500}

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
  cargo build --workspace --all-features --release --bin counter --bin stress --example inventory
  BIN=$TARGET_DIR/release
else
  cargo build --workspace --all-features --bin counter --bin stress --example inventory
  BIN=$TARGET_DIR/debug
fi

# The main example's key, shared by its processes.
INVENTORY_KEY=$(head -c 32 /dev/urandom | base64 | tr -d '\n')
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

# Starts two processes of the main example on the Postgres, one after the
# other (the first creates and fills the table), with the environment given;
# URL1, URL2: item 1's edit page on each.
start_inventory_pair() {
  local name=$1
  shift
  [[ -n "$PGDATA" ]] || start_postgres
  local n
  for n in 1 2; do
    env "$@" ADDR=127.0.0.1:0 DATABASE_URL="$PG_URL" CONCURRENCY_GUARD_KEY="$INVENTORY_KEY" \
      EARLY_WARNING_SECS=60 RUST_LOG=warn PG_RESTART_GRACE_MS="$PG_GRACE_MS" \
      "$BIN/examples/inventory" >"$WORK/$name$n.out" 2>"$WORK/$name$n.err" &
    PIDS+=($!)
    echo $! >"$WORK/$name$n.pid"
    await_counter "$name$n"
    URL=${URL%/}
    if ((n == 1)); then URL1="$URL/items/1"; else URL2="$URL/items/1"; fi
  done
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

# The table's rows, one per run.
TABLE=()
ROW_FORMAT='%-4s %9s  %-22s %7s %7s %8s %9s %9s %6s %12s  %-20s %s'

# Field NAME of a run's summary line (name=value …).
field() {
  grep -o "\b$2=[-0-9]*" "$WORK/$1.summary" 2>/dev/null | cut -d= -f2 || true
}

# Adds run NAME to the table: processes, lock backend, what it must show,
# and whether it did (its exit status).
row() {
  local name=$1 processes=$2 backend=$3 expect=$4 rc=$5
  local verdict=ok
  ((rc == 0)) || verdict=FAILED
  # shellcheck disable=SC2059
  TABLE+=("$(printf "$ROW_FORMAT" \
    "($name)" "$processes" "$backend" "$CLIENTS" "$(field "$name" submits)" \
    "$(field "$name" accepted)" "$(field "$name" unchanged)" "$(field "$name" conflicts)" \
    "$(field "$name" errors)" \
    "$(field "$name" lost_updates)" "$expect" "$verdict")")
}

# Runs the load program in the background; STRESS_PID.
stress_start() {
  local name=$1
  shift
  STRESS_STARTED=$SECONDS
  "$BIN/stress" --clients "$CLIENTS" --submits "$SUBMITS" --time-limit "$TIME_LIMIT" "$@" \
    >"$WORK/$name.summary" 2>"$WORK/$name.log" &
  STRESS_PID=$!
}

# Waits for it; prints its summary with the run's name and time.
stress_wait() {
  local name=$1
  local rc=0
  wait "$STRESS_PID" || rc=$?
  echo "   $name: $(cat "$WORK/$name.summary") ($((SECONDS - STRESS_STARTED)) s)"
  sed 's/^/      /' "$WORK/$name.log"
  return $rc
}

# Runs the load program; prints its summary with the run's name and time.
stress() {
  local name=$1
  shift
  stress_start "$name" "$@"
  stress_wait "$name"
}

# Starts two counters on the Postgres with GUARD=$2 (and the environment
# after it); URL1, URL2.
start_pair() {
  local name=$1 guard=$2
  shift 2
  [[ -n "$PGDATA" ]] || start_postgres
  # Both start at once, as behind a load balancer: creating the table and
  # its row must not fail in either.
  launch_counter "${name}1" GUARD="$guard" DATABASE_URL="$PG_URL" "$@"
  launch_counter "${name}2" GUARD="$guard" DATABASE_URL="$PG_URL" "$@"
  await_counter "${name}1"
  URL1=$URL
  await_counter "${name}2"
  URL2=$URL
}

# Starts two counters on one SQLite file with GUARD=$2; URL1, URL2.
start_sqlite_pair() {
  local name=$1 guard=$2
  launch_counter "${name}1" GUARD="$guard" COUNTER_DB="$WORK/$name.db"
  launch_counter "${name}2" GUARD="$guard" COUNTER_DB="$WORK/$name.db"
  await_counter "${name}1"
  URL1=$URL
  await_counter "${name}2"
  URL2=$URL
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
      # The lock's restart grace counts from the server's start too: wait
      # it out once, so that only (f)'s restart meets it.
      sleep "$((PG_GRACE_MS / 1000 + 1))"
      return 0
    fi
  done
  cat "$PGDATA/server.log" >&2 || true
  return 1
}

FAILED=()
TOTAL_START=$SECONDS

for run in $RUNS; do
  rc=0
  case "$run" in
  a)
    echo "== (a) SQLite, one process, GUARD=lock: $SUBMITS submits, $CLIENTS clients"
    start_counter a GUARD=lock COUNTER_DB="$WORK/a.db"
    stress a --urls "$URL" || rc=$?
    stop_counters
    row a 1 "in-process (SQLite)" "0 lost" $rc
    ;;
  b)
    echo "== (b) Postgres, two processes, GUARD=tx: $SUBMITS submits, $CLIENTS clients"
    start_pair b tx
    stress b --urls "$URL1,$URL2" || rc=$?
    stop_counters
    row b 2 "tx + FOR UPDATE (PG)" "0 lost" $rc
    ;;
  e)
    echo "== (e) Postgres, two processes, GUARD=pglock (no handler change): $SUBMITS submits, $CLIENTS clients"
    start_pair e pglock PG_RESTART_GRACE_MS="$PG_GRACE_MS"
    stress e --urls "$URL1,$URL2" || rc=$?
    stop_counters
    row e 2 "PG advisory lock" "0 lost" $rc
    ;;
  d)
    # Shows that (b) and (e) need their lock: the in-process lock cannot
    # serialize two processes.
    echo "== (d) control: Postgres, two processes, GUARD=lock, must lose updates: $SUBMITS submits, $CLIENTS clients"
    start_pair d lock
    stress d --urls "$URL1,$URL2" --expect-lost || rc=$?
    stop_counters
    row d 2 "in-process (PG)" "control: > 0 lost" $rc
    ;;
  c)
    echo "== (c) control: SQLite, GUARD=off, must lose updates: $SUBMITS submits, $CLIENTS clients"
    start_counter c GUARD=off COUNTER_DB="$WORK/c.db"
    stress c --urls "$URL" --expect-lost || rc=$?
    stop_counters
    row c 1 "none (SQLite)" "control: > 0 lost" $rc
    ;;
  f)
    echo "== (f) fault: (e) with Postgres restarted mid-run: $SUBMITS submits, $CLIENTS clients"
    start_pair f pglock PG_RESTART_GRACE_MS="$PG_GRACE_MS"
    stress_start f --urls "$URL1,$URL2" --allow-5xx
    sleep 1
    if kill -0 "$STRESS_PID" 2>/dev/null; then
      echo "   restarting Postgres (pg_ctl restart -m fast) under load"
      "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 -m fast restart >/dev/null || rc=$?
    else
      echo "   the run ended before the restart: give it more submits" >&2
      rc=1
    fi
    stress_wait f || rc=$?
    stop_counters
    row f 2 "PG advisory lock" "PG restart: 0 lost" $rc
    ;;
  m)
    echo "== (m) the main example as shipped: two processes on Postgres, its edit form: $SUBMITS submits, $CLIENTS clients"
    start_inventory_pair m
    stress m --app inventory --urls "$URL1,$URL2" || rc=$?
    stop_counters
    row m 2 "PG advisory lock" "main example: 0 lost" $rc
    ;;
  n)
    echo "== (n) control: (m) with in-process locks, must lose updates: $SUBMITS submits, $CLIENTS clients"
    start_inventory_pair n INVENTORY_RECORD_LOCK=in-process
    stress n --app inventory --urls "$URL1,$URL2" --expect-lost || rc=$?
    stop_counters
    row n 2 "in-process (PG)" "control: > 0 lost" $rc
    ;;
  g)
    echo "== (g) SQLite, two processes on one file, GUARD=tx (BEGIN IMMEDIATE): $SUBMITS submits, $CLIENTS clients"
    start_sqlite_pair g tx
    stress g --urls "$URL1,$URL2" || rc=$?
    stop_counters
    row g 2 "tx IMMEDIATE (SQLite)" "0 lost" $rc
    ;;
  h)
    echo "== (h) control: SQLite, two processes on one file, GUARD=lock, must lose updates: $SUBMITS submits, $CLIENTS clients"
    start_sqlite_pair h lock
    stress h --urls "$URL1,$URL2" --expect-lost || rc=$?
    stop_counters
    row h 2 "in-process (SQLite)" "control: > 0 lost" $rc
    ;;
  t)
    echo "== (t) the Postgres lock's fault tests (stress/tests/pglock.rs) on this Postgres"
    [[ -n "$PGDATA" ]] || start_postgres
    release=()
    [[ "$PROFILE" == release ]] && release=(--release)
    PG_URL="$PG_URL" cargo test "${release[@]}" --workspace --all-features --test pglock \
      -- --skip a_restart_while || rc=$?
    # The restart test restarts this server: alone, after the others.
    PG_URL="$PG_URL" \
      PG_RESTART_CMD="${PG_AS[*]} $PG_BIN/pg_ctl -D $PGDATA -l $PGDATA/server.log -w -t 60 -m fast restart" \
      cargo test "${release[@]}" --workspace --all-features --test pglock \
      -- --exact a_restart_while_a_handler_holds_the_lock_refuses_others_for_the_grace || rc=$?
    ;;
  *)
    echo "unknown run $run (expected a, b, c, d, e, f, g, h, m, n or t)" >&2
    exit 2
    ;;
  esac
  ((rc == 0)) || FAILED+=("($run)")
done

echo
echo "== lost updates, per run (submits: POSTs in all, over every process; unchanged: accepted writes of the value already there, which add nothing)"
# shellcheck disable=SC2059
printf "$ROW_FORMAT\n" \
  run processes "lock backend" clients submits accepted unchanged conflicts errors "lost updates" "must show" result
for line in "${TABLE[@]}"; do
  echo "$line"
done
echo
echo "== stress done in $((SECONDS - TOTAL_START)) s"
if ((${#FAILED[@]})); then
  echo "FAILED: ${FAILED[*]}" >&2
  exit 1
fi
