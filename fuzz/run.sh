#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for N seconds each.
#
#   fuzz/run.sh [seconds-per-target] [target...]     (default 30 s, all targets)
#
# Each target first replays fuzz/regressions/<target>-* (inputs of bugs found
# before), then fuzzes. Fails (exit 1) if a regression input or a new input
# crashes; new crashes land in fuzz/artifacts/<target>/, logs in fuzz/logs/.
#
# Environment:
#   FUZZ_SANITIZER   address (default) or none
#   FUZZ_MASK_KNOWN  1: let the oracles accept the known bugs (README.md)
#   FUZZ_ARGS        extra libFuzzer flags, e.g. "-max_len=65536"
set -euo pipefail

secs="${1:-30}"
[ $# -gt 0 ] && shift
cd "$(dirname "$0")"

# cargo-fuzz needs nightly-only flags (-Zsanitizer, -Cpasses=sancov-module);
# the stable toolchain accepts them with RUSTC_BOOTSTRAP=1.
export RUSTC_BOOTSTRAP=1
sanitizer="${FUZZ_SANITIZER:-address}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

# Debug assertions and overflow checks come from fuzz/Cargo.toml's release
# profile. `-O`: without it cargo fuzz adds -Cdebug-assertions for every
# crate, lol_html included.
build_flags=(--sanitizer "$sanitizer" -O)
echo "== building ${targets[*]} (sanitizer: $sanitizer)" >&2
if [ $# -gt 0 ]; then
    for t in "${targets[@]}"; do cargo fuzz build "${build_flags[@]}" "$t"; done
else
    cargo fuzz build "${build_flags[@]}"
fi

mkdir -p logs
failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "seeds/$t"
    # First the inputs of bugs found before (regressions/<t>-*), once each.
    regs=(regressions/"$t"-*)
    if [ -e "${regs[0]}" ]; then
        echo "== $t: replaying ${#regs[@]} input(s) from regressions/" >&2
        : >"logs/$t.regressions.log"
        for r in "${regs[@]}"; do
            if ! cargo fuzz run "${build_flags[@]}" "$t" "$r" >>"logs/$t.regressions.log" 2>&1; then
                failed+=("$r")
                echo "== $r FAILS (log: fuzz/logs/$t.regressions.log)" >&2
            fi
        done
    fi
    dict=()
    [ -f "dicts/$t.dict" ] && dict=(-dict="dicts/$t.dict")
    echo "== $t: ${secs}s" >&2
    # corpus/<t> first: libFuzzer writes new inputs into the first directory,
    # so the committed seeds/<t> is only read.
    # shellcheck disable=SC2086
    if cargo fuzz run "${build_flags[@]}" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=20 -print_final_stats=1 "${dict[@]}" \
        ${FUZZ_ARGS:-} >"logs/$t.log" 2>&1; then
        grep -E '^#[0-9]+[[:space:]]+DONE' "logs/$t.log" | tail -1 >&2 || true
    else
        failed+=("$t")
        grep -E 'panicked at|assertion|left:|right:|ERROR: AddressSanitizer|ERROR: libFuzzer|SUMMARY|Test unit written' "logs/$t.log" | head -20 >&2 || true
        echo "== $t FAILED (log: fuzz/logs/$t.log)" >&2
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "== crashes in: ${failed[*]}" >&2
    exit 1
fi
echo "== all targets ran ${secs}s without a crash" >&2
