#!/usr/bin/env bash
# Load test: bare vs guarded axum routes, side by side, on loopback.
#
#   bench/load.sh                 one run, 10 s per scenario
#   RUNS=3 DURATION=10 bench/load.sh
#
# Builds bench_server (bench/server.rs) in release, starts it on
# 127.0.0.1, runs wrk (-t1 -c32) against each scenario and prints requests/s
# and the ratios guarded/bare of the same run; with RUNS > 1 the
# min/median/max of each ratio over the runs. Then measures the extra peak
# memory (VmHWM) of a 100 MB multipart upload through the guard against the
# same upload to a bare route. Everything stops by itself.
#
# Where `taskset` is available (PIN=1, the default) the server runs on CPU 1
# with one runtime worker and wrk on CPU 0, so that the two do not fight for
# a core and a ratio is the server's own throughput. Each run measures in the
# order bare, guarded…, guarded…, bare (each DURATION seconds) and averages
# the two measurements of each route, so that a drift of the machine during
# the run weighs on bare and guarded alike.
#
# Then the checks per second one process sustains: the early warning's
# check of a current page (GET /watch/items/1 with the page's token in
# `x-concurrency-token` and `x-concurrency-guard: check`, answered 204) and
# live rebase's check of a stale page (the same with `Accept:
# application/json` and a stale token, answered 200 with what changed and a
# fresh token), beside the bare GET of the same run.
#
# For reference it measures the bare handlers behind an empty
# `middleware::from_fn` layer too (what any axum layer costs here), and
# prints the server's CPU time per request (user and system) of every
# route: the user part is the server's own code, steadier than requests/s.
#
# Environment: RUNS (1), DURATION seconds per measurement (5), CONNECTIONS
# (32), PORT (3999), UPLOAD_MB (100; 0 skips the upload), PIN (1).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-1}"
DURATION="${DURATION:-5}"
CONNECTIONS="${CONNECTIONS:-32}"
PORT="${PORT:-3999}"
PIN="${PIN:-1}"
UPLOAD_MB="${UPLOAD_MB:-100}"
ADDR="127.0.0.1:${PORT}"
BASE="http://${ADDR}"

if ! command -v wrk >/dev/null 2>&1; then
    echo "== installing wrk (Debian package)" >&2
    if ! apt-get install -y -qq wrk >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq wrk >/dev/null
    fi
fi
command -v curl >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }

echo "== building the bench server (release)" >&2
cargo build --release --quiet -p concurrency-guard-bench --bin bench_server
target_dir="${CARGO_TARGET_DIR:-target}"
server_bin="$target_dir/release/bench_server"

server_cmd=("$server_bin" "$ADDR")
wrk_cmd=(wrk)
if [ "$PIN" = 1 ] && command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
    server_cmd=(env BENCH_WORKERS=1 taskset -c 1 "$server_bin" "$ADDR")
    wrk_cmd=(taskset -c 0 wrk)
    pinning="server on CPU 1 (one worker), wrk on CPU 0"
else
    pinning="not pinned"
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

"${server_cmd[@]}" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 100); do
    curl -fsS "$BASE/bench/token" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "$BASE/bench/post-body" >"$work/body.txt"
token="$(curl -fsS "$BASE/bench/token")"
stale_token="$(curl -fsS "$BASE/bench/stale-token")"

# Sanity: every route answers as it should before it is measured.
check() { # method path expected-status [grep-pattern]
    local out status
    if [ "$1" = POST ]; then
        status="$(curl -s -o "$work/out" -w '%{http_code}' -X POST \
            -H 'Content-Type: application/x-www-form-urlencoded' \
            --data-binary @"$work/body.txt" "$BASE$2")"
    else
        status="$(curl -s -o "$work/out" -w '%{http_code}' "$BASE$2")"
    fi
    if [ "$status" != "$3" ] || { [ -n "${4:-}" ] && ! grep -q -- "$4" "$work/out"; }; then
        echo "!! $1 $2 answered $status (want $3${4:+, containing $4})" >&2
        head -c 400 "$work/out" >&2
        exit 1
    fi
}
check GET /bare/items/1 200
check GET /embed/items/1 200 'name="_concurrency_token"'
check GET /template/items/1 200 'name="_concurrency_token"'
check POST /bare/items/1 200 saved
check POST /embed/items/1 200 saved
check GET /noop/items/1 200
check POST /noop/items/1 200 saved
# The check requests: current 204; stale with JSON accepted 200 and what changed.
check_request() { # token accept expected-status [grep-pattern]
    local status
    status="$(curl -s -o "$work/out" -w '%{http_code}' -H "x-concurrency-token: $1" \
        -H 'x-concurrency-guard: check' -H "Accept: $2" "$BASE/watch/items/1")"
    if [ "$status" != "$3" ] || { [ -n "${4:-}" ] && ! grep -q -- "$4" "$work/out"; }; then
        echo "!! check request ($2) answered $status (want $3${4:+, containing $4})" >&2
        head -c 400 "$work/out" >&2
        exit 1
    fi
}
check_request "$token" '*/*' 204
check_request "$stale_token" application/json 200 '"name"'

cat >"$work/check.lua" <<LUA
wrk.headers["x-concurrency-token"] = "$token"
wrk.headers["x-concurrency-guard"] = "check"
LUA
cat >"$work/rebase.lua" <<LUA
wrk.headers["x-concurrency-token"] = "$stale_token"
wrk.headers["x-concurrency-guard"] = "check"
wrk.headers["Accept"] = "application/json"
LUA

cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local f = io.open("$work/body.txt", "rb")
wrk.body = f:read("*a")
f:close()
LUA

# One wrk run: "requests/s user-µs sys-µs", the last two the server's CPU
# time per request (from /proc: steadier than requests/s, and it tells the
# server's own code from the kernel's work); non-2xx answers fail the script.
measure() { # path [lua]
    local args=(-t1 "-c$CONNECTIONS" "-d${DURATION}s" --timeout 5s)
    [ -n "${2:-}" ] && args+=(-s "$2")
    local u0 s0 u1 s1
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$server_pid/stat")
    "${wrk_cmd[@]}" "${args[@]}" "$BASE$1" >"$work/wrk.txt"
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$server_pid/stat")
    if grep -q "Non-2xx" "$work/wrk.txt"; then
        echo "!! non-2xx answers for $1:" >&2
        cat "$work/wrk.txt" >&2
        exit 1
    fi
    awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$(getconf CLK_TCK)" '
        /requests in/ { n = $1 }
        /^Requests\/sec:/ { r = $2 }
        END { printf "%s %.3f %.3f\n", r, u / hz / n * 1e6, s / hz / n * 1e6 }' "$work/wrk.txt"
}
# requests/s only.
rps() { measure "$@" | cut -d' ' -f1; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
mean() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a + b) / 2 }'; }

# Warm-up (connections, allocator, caches), not measured.
DURATION=2 rps /bare/items/1 >/dev/null
DURATION=2 rps /embed/items/1 >/dev/null

echo "== machine: $(nproc) cores, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')"
echo "== wrk -t1 -c$CONNECTIONS -d${DURATION}s per measurement, each route twice per run (bare first and last), $RUNS run(s); $pinning"
: >"$work/ratios"
: >"$work/cpu"
for run in $(seq 1 "$RUNS"); do
    # Each route twice, in mirrored order, so that a drift during the run
    # weighs on every route alike.
    read -r g1 gu1 gs1 < <(measure /bare/items/1)
    read -r n1 nu1 ns1 < <(measure /noop/items/1)
    read -r e1 eu1 es1 < <(measure /embed/items/1)
    read -r t1 tu1 ts1 < <(measure /template/items/1)
    read -r t2 tu2 ts2 < <(measure /template/items/1)
    read -r e2 eu2 es2 < <(measure /embed/items/1)
    read -r n2 nu2 ns2 < <(measure /noop/items/1)
    read -r g2 gu2 gs2 < <(measure /bare/items/1)
    read -r p1 pu1 ps1 < <(measure /bare/items/1 "$work/post.lua")
    read -r m1 mu1 ms1 < <(measure /noop/items/1 "$work/post.lua")
    read -r q1 qu1 qs1 < <(measure /embed/items/1 "$work/post.lua")
    read -r q2 qu2 qs2 < <(measure /embed/items/1 "$work/post.lua")
    read -r m2 mu2 ms2 < <(measure /noop/items/1 "$work/post.lua")
    read -r p2 pu2 ps2 < <(measure /bare/items/1 "$work/post.lua")
    get_bare=$(mean "$g1" "$g2")
    get_noop=$(mean "$n1" "$n2")
    get_embed=$(mean "$e1" "$e2")
    get_template=$(mean "$t1" "$t2")
    post_bare=$(mean "$p1" "$p2")
    post_noop=$(mean "$m1" "$m2")
    post_embed=$(mean "$q1" "$q2")
    r_embed=$(ratio "$get_embed" "$get_bare")
    r_template=$(ratio "$get_template" "$get_bare")
    r_post=$(ratio "$post_embed" "$post_bare")
    r_noop_get=$(ratio "$get_noop" "$get_bare")
    r_noop_post=$(ratio "$post_noop" "$post_bare")
    printf 'run %d: GET bare %s/s, empty layer %s/s, embed %s/s, template %s/s; POST bare %s/s, empty layer %s/s, guarded %s/s\n' \
        "$run" "$get_bare" "$get_noop" "$get_embed" "$get_template" "$post_bare" "$post_noop" "$post_embed"
    printf 'run %d ratios: GET auto-embed/bare %s (goal >= 0.90), GET template/bare %s (goal >= 0.95), POST guarded/bare %s (goal >= 0.90); for reference, an empty from_fn layer/bare: GET %s, POST %s\n' \
        "$run" "$r_embed" "$r_template" "$r_post" "$r_noop_get" "$r_noop_post"
    printf 'run %d server CPU per request, user + sys µs: GET bare %s + %s, empty layer %s + %s, embed %s + %s, template %s + %s; POST bare %s + %s, empty layer %s + %s, guarded %s + %s\n' \
        "$run" "$(mean "$gu1" "$gu2")" "$(mean "$gs1" "$gs2")" "$(mean "$nu1" "$nu2")" "$(mean "$ns1" "$ns2")" \
        "$(mean "$eu1" "$eu2")" "$(mean "$es1" "$es2")" "$(mean "$tu1" "$tu2")" "$(mean "$ts1" "$ts2")" \
        "$(mean "$pu1" "$pu2")" "$(mean "$ps1" "$ps2")" "$(mean "$mu1" "$mu2")" "$(mean "$ms1" "$ms2")" \
        "$(mean "$qu1" "$qu2")" "$(mean "$qs1" "$qs2")"
    echo "$r_embed $r_template $r_post $r_noop_get $r_noop_post" >>"$work/ratios"
    # The guard's user CPU per request over the bare route's (server code
    # only: the kernel's share moves with the machine, see BENCHMARKS.md).
    echo "$(mean "$eu1" "$eu2") $(mean "$tu1" "$tu2") $(mean "$qu1" "$qu2") $(mean "$nu1" "$nu2") $(mean "$mu1" "$mu2") $(mean "$gu1" "$gu2") $(mean "$pu1" "$pu2")" >>"$work/cpu"
done

summary() { # name: min/median/max of the numbers on stdin
    sort -g | awk -v n="$1" '
        { v[NR] = $1 }
        END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
              printf "%s: min %.3f, median %.3f, max %.3f over %d runs\n", n, v[1], m, v[NR], NR }'
}
if [ "$RUNS" -gt 1 ]; then
    col=1
    for name in GET-auto-embed/bare GET-template/bare POST-guarded/bare empty-layer-GET/bare empty-layer-POST/bare; do
        cut -d' ' -f"$col" "$work/ratios" | summary "$name"
        col=$((col + 1))
    done
fi
echo "== server user CPU per request over the bare route's (µs; the guard's own code, or an empty layer's)"
awk '{ print $1 - $6 }' "$work/cpu" | summary "GET auto-embed"
awk '{ print $2 - $6 }' "$work/cpu" | summary "GET template"
awk '{ print $3 - $7 }' "$work/cpu" | summary "POST guarded"
awk '{ print $4 - $6 }' "$work/cpu" | summary "GET empty layer"
awk '{ print $5 - $7 }' "$work/cpu" | summary "POST empty layer"

echo "== check requests per second (one server process; wrk -t1 -c$CONNECTIONS -d${DURATION}s each, bare GET first and last)"
read -r cb1 cbu1 cbs1 < <(measure /bare/items/1)
read -r cc1 ccu1 ccs1 < <(measure /watch/items/1 "$work/check.lua")
read -r cr1 cru1 crs1 < <(measure /watch/items/1 "$work/rebase.lua")
read -r cr2 cru2 crs2 < <(measure /watch/items/1 "$work/rebase.lua")
read -r cc2 ccu2 ccs2 < <(measure /watch/items/1 "$work/check.lua")
read -r cb2 cbu2 cbs2 < <(measure /bare/items/1)
printf 'early-warning check, current page (204): %s/s, server CPU %s + %s µs per request (user + sys)\n' \
    "$(mean "$cc1" "$cc2")" "$(mean "$ccu1" "$ccu2")" "$(mean "$ccs1" "$ccs2")"
printf 'live-rebase check, stale page (200 with what changed): %s/s, server CPU %s + %s µs per request\n' \
    "$(mean "$cr1" "$cr2")" "$(mean "$cru1" "$cru2")" "$(mean "$crs1" "$crs2")"
printf 'for reference, bare GET of the 4 KB page: %s/s, server CPU %s + %s µs per request\n' \
    "$(mean "$cb1" "$cb2")" "$(mean "$cbu1" "$cbu2")" "$(mean "$cbs1" "$cbs2")"

if [ "$UPLOAD_MB" -gt 0 ]; then
    echo "== ${UPLOAD_MB} MB multipart upload: extra peak memory (VmHWM) of the guarded route"
    head -c "$((UPLOAD_MB * 1024 * 1024))" /dev/zero >"$work/upload.bin"
    hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status"; }
    rss() { awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status"; }
    upload() { # path
        # Reset the high-water mark to the current RSS, then upload.
        echo 5 >"/proc/$server_pid/clear_refs"
        local before; before=$(rss)
        curl -fsS -o "$work/out" -F "_concurrency_token=$token" -F "file=@$work/upload.bin" \
            "$BASE$1"
        local after; after=$(hwm)
        echo "$before $after $(cat "$work/out")"
    }
    # Once each unmeasured (first-touch allocations), then three times each,
    # alternating. The RSS before an upload moves with what the allocator
    # has given back meanwhile, so a rise alone misleads: the figure is the
    # difference of the peaks (median of three each), the server being the
    # same process with the same baseline.
    upload /bare/upload/1 >/dev/null
    upload /embed/upload/1 >/dev/null
    : >"$work/peaks"
    for _ in 1 2 3; do
        read -r b0 b1 bn _ < <(upload /bare/upload/1)
        read -r g0 g1 gn _ < <(upload /embed/upload/1)
        printf 'bare:    RSS before %d KiB, peak %d KiB (+%d KiB), %s bytes read by the handler\n' "$b0" "$b1" "$((b1 - b0))" "$bn"
        printf 'guarded: RSS before %d KiB, peak %d KiB (+%d KiB), %s bytes read by the handler\n' "$g0" "$g1" "$((g1 - g0))" "$gn"
        echo "$b1 $g1" >>"$work/peaks"
    done
    median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
    bare_peak=$(cut -d' ' -f1 "$work/peaks" | median)
    guarded_peak=$(cut -d' ' -f2 "$work/peaks" | median)
    printf 'median peak: bare %d KiB, guarded %d KiB; extra peak of the guarded upload: %d KiB (goal < 1024 KiB)\n' \
        "$bare_peak" "$guarded_peak" "$((guarded_peak - bare_peak))"
fi
