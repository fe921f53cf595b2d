#!/usr/bin/env bash
# End-to-end: the examples in a real browser.
#
# Builds the examples, starts `inventory` (fresh SQLite file), `seed` and
# `htmx_contacts` (once with htmx 2, once with htmx 4, from node_modules),
# `forms` and `posts` on free ports, runs the scenarios (scenarios.test.mjs,
# htmx.test.mjs, forms.test.mjs, dates.test.mjs; node's test runner)
# with Debian's chromium driven by playwright-core, and stops the servers on
# exit. Exits non-zero when a scenario fails.
#
# Needs: cargo, node >= 20, chromium (apt-get install chromium), and
# `npm install` in this folder (done here when node_modules is missing).
# Screenshots of the conflict pages go to target/e2e-screenshots/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export SCREENSHOT_DIR="${SCREENSHOT_DIR:-$target_dir/e2e-screenshots}"

if [ ! -x "$CHROMIUM" ]; then
  echo "e2e: no browser at $CHROMIUM (apt-get install chromium, or set CHROMIUM)" >&2
  exit 1
fi
if [ ! -d "$here/node_modules/playwright-core" ] || [ ! -d "$here/node_modules/htmx4" ]; then
  (cd "$here" && npm install --no-audit --no-fund)
fi

(cd "$root" && cargo build --examples)

work="$(mktemp -d)"
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ]; then
    for log in "$work"/*.log; do
      [ -f "$log" ] || continue
      echo "--- last lines of $(basename "$log") ---" >&2
      tail -n 30 "$log" >&2
    done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME [VAR=value...]: runs example NAME on a free port, logging to $work/NAME.log.
start() {
  start_as "$1" "$@"
}

# start_as LOG NAME [VAR=value...]: the same, logging to $work/LOG.log.
start_as() {
  local log=$1 name=$2
  shift 2
  env "$@" ADDR=127.0.0.1:0 "$target_dir/debug/examples/$name" >"$work/$log.log" 2>&1 &
  pids+=("$!")
}

# url_of NAME PID: the URL the example prints once it listens.
url_of() {
  local name=$1 pid=$2 url
  for _ in $(seq 1 200); do
    url="$(grep -o -m1 'http://[^ ]*' "$work/$name.log" || true)"
    if [ -n "$url" ]; then
      echo "$url"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "e2e: $name exited before it listened" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "e2e: $name did not start within 20 s" >&2
  return 1
}

# The early-warning banner and live rebase are tested on instances of their
# own that check every second; on the main one (checks hourly, live rebase
# off) a page never changes under a conflict scenario.
start inventory INVENTORY_DB="$work/inventory.db" EARLY_WARNING_SECS=3600 LIVE_REBASE=0
start seed
start_as warn inventory INVENTORY_DB="$work/warn.db" EARLY_WARNING_SECS=1 LIVE_REBASE=0
start_as rebase inventory INVENTORY_DB="$work/rebase.db" EARLY_WARNING_SECS=1
# The htmx example, once per htmx version, each the real build from npm.
start_as htmx2 htmx_contacts HTMX_JS="$here/node_modules/htmx2/dist/htmx.min.js"
start_as htmx4 htmx_contacts HTMX_JS="$here/node_modules/htmx4/dist/htmx.min.js"
# Forms as browsers submit them, in merge mode (in memory).
start forms
# Dates and times as their inputs show them (in memory).
start posts
INVENTORY_URL="$(url_of inventory "${pids[0]}")"
SEED_URL="$(url_of seed "${pids[1]}")"
WARN_URL="$(url_of warn "${pids[2]}")"
REBASE_URL="$(url_of rebase "${pids[3]}")"
HTMX2_URL="$(url_of htmx2 "${pids[4]}")"
HTMX4_URL="$(url_of htmx4 "${pids[5]}")"
FORMS_URL="$(url_of forms "${pids[6]}")"
POSTS_URL="$(url_of posts "${pids[7]}")"
export INVENTORY_URL SEED_URL WARN_URL REBASE_URL HTMX2_URL HTMX4_URL FORMS_URL POSTS_URL
echo "e2e: inventory at $INVENTORY_URL, seed at $SEED_URL, early warning at $WARN_URL, live rebase at $REBASE_URL, htmx 2 at $HTMX2_URL, htmx 4 at $HTMX4_URL, forms at $FORMS_URL, posts at $POSTS_URL"

mkdir -p "$SCREENSHOT_DIR"
cd "$here"
# Each scenario has its own 90 s limit; this one bounds the whole run, so a
# hang anywhere (the browser, node) fails within minutes.
timeout --kill-after=15 600 node --test scenarios.test.mjs htmx.test.mjs forms.test.mjs dates.test.mjs
