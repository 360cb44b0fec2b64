#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ (one per input format) for a while each, one after the other,
# and prints how many inputs each one ran. Installs cargo-fuzz into .cache/ on first use.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default: 60 s, every target
#
# Targets: header ocs_xml ldif csv config (see fuzz/fuzz_targets/ and src/fuzzing.rs).
# Environment:
#   FUZZ_SANITIZER=address   build with AddressSanitizer (default none: safe Rust, 2-3x faster)
#   FUZZ_NICE=15             niceness of the build and the run
#   FUZZ_TIMEOUT=10          seconds one input may take before it counts as a hang
#
# New inputs found go to fuzz/target/corpus/<target>/ (not committed); the committed seeds in
# fuzz/corpus/<target>/ are only read. A crash or hang leaves its input in
# fuzz/artifacts/<target>/ and makes the script exit 1 after the remaining targets ran.
# cargo-fuzz needs unstable rustc flags; RUSTC_BOOTSTRAP=1 lets a stable toolchain accept them.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fuzz_dir=$root/fuzz
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(header ocs_xml ldif csv config)

cargo_fuzz_version=0.13.2
cargo_fuzz=$root/.cache/cargo-fuzz/bin/cargo-fuzz
if ! [ -x "$cargo_fuzz" ] || ! "$cargo_fuzz" --version | grep -qF "$cargo_fuzz_version"; then
    echo "installing cargo-fuzz $cargo_fuzz_version into .cache/cargo-fuzz" >&2
    nice -n "${FUZZ_NICE:-15}" cargo install --locked --version "$cargo_fuzz_version" \
        --root "$root/.cache/cargo-fuzz" cargo-fuzz >&2
fi

export RUSTC_BOOTSTRAP=1
sanitizer=${FUZZ_SANITIZER:-none}
build_flags=(--fuzz-dir "$fuzz_dir" --sanitizer "$sanitizer" --debug-assertions)

cd "$fuzz_dir"
nice -n "${FUZZ_NICE:-15}" "$cargo_fuzz" build "${build_flags[@]}" >&2

failed=0
total=0
printf '%-8s %12s %10s %8s  %s\n' target executions 'exec/s' seconds result
for target in "${targets[@]}"; do
    work=$fuzz_dir/target/corpus/$target
    log=$fuzz_dir/target/fuzz-$target.log
    mkdir -p "$work"
    status=ok
    nice -n "${FUZZ_NICE:-15}" "$cargo_fuzz" run "${build_flags[@]}" "$target" "$work" "$fuzz_dir/corpus/$target" -- \
        -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1 || status="FAILED (see $log)"
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    runs=${runs:-0}
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    [ "$status" = ok ] || failed=1
    total=$((total + runs))
    printf '%-8s %12s %10s %8s  %s\n' "$target" "$runs" "${rate:-?}" "$seconds" "$status"
done
printf '%-8s %12s\n' total "$total"
exit "$failed"
