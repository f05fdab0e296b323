#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) on the stable toolchain,
# without a sanitizer (-s none; AddressSanitizer would need nightly).
#
# For each target in fuzz/fuzz_targets: replays the committed seed corpus
# (fuzz/corpus/TARGET) and any saved reproducers (fuzz/regressions/TARGET),
# then fuzzes for FUZZ_SECONDS (default 30) into a scratch copy of the
# corpus, so the tree is not modified (a crash's reproducer goes to
# fuzz/artifacts/TARGET/, which git ignores). Fails if any target crashes,
# hangs or runs out of memory. One summary line per target.
#
# Environment: FUZZ_SECONDS (per target), FUZZ_TARGETS (space-separated
# subset; default every target).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
FLAGS=(-s none -a --fuzz-dir fuzz --target-dir fuzz/target)

step() { printf '\n== %s\n' "$*"; }

step "tools"
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
	cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
if ! command -v g++ >/dev/null; then # libfuzzer-sys compiles libFuzzer (C++)
	apt-get install -y g++ >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y g++ >/dev/null; }
fi
cargo --version
cargo fuzz --version
g++ --version | head -1

targets=(${FUZZ_TARGETS:-$(cargo fuzz list --fuzz-dir fuzz)})

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step "build (fuzz/target)"
start=$SECONDS
if ! cargo fuzz build "${FLAGS[@]}" >"$work/build.log" 2>&1; then
	tail -60 "$work/build.log"
	echo "fuzz build failed" >&2
	exit 1
fi
echo "built in $((SECONDS - start)) s"

# The last status line of a libFuzzer log: "#N DONE cov: C ft: F corp: K/...".
field() { sed -n "s/.* $1: *\([^ ]*\).*/\1/p" <<<"$2"; }

summary=()
failed=0
for t in "${targets[@]}"; do
	step "$t"
	seeds=(fuzz/corpus/"$t")
	if [ -d fuzz/regressions/"$t" ] && [ -n "$(ls -A fuzz/regressions/"$t")" ]; then
		seeds+=(fuzz/regressions/"$t")
	fi
	log="$work/$t.replay.log"
	if cargo fuzz run "${FLAGS[@]}" "$t" "${seeds[@]}" -- -runs=0 >"$log" 2>&1; then
		replay="replayed $(find "${seeds[@]}" -type f | wc -l) seeds"
	else
		grep -A2 'panicked at' "$log" | head -20 || true
		grep -E 'Running: |Test unit written|^Error' "$log" | tail -5 || true
		summary+=("$t: FAILED replaying ${seeds[*]} (log above)")
		failed=1
		continue
	fi
	mkdir -p "$work/$t" fuzz/artifacts/"$t"
	cp fuzz/corpus/"$t"/* "$work/$t/"
	log="$work/$t.fuzz.log"
	rc=0
	cargo fuzz run "${FLAGS[@]}" "$t" "$work/$t" -- \
		-max_total_time="$FUZZ_SECONDS" -timeout=30 -print_final_stats=1 >"$log" 2>&1 || rc=$?
	last=$(grep -E '^#[0-9]+.*cov:' "$log" | tail -1 || true)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	persec=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	cov=$(field cov "$last")
	corp=$(field corp "$last")
	if [ "$rc" = 0 ]; then
		result=ok
	else
		grep -E -A30 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -60 || tail -40 "$log"
		artifact=$(sed -n 's/.*Test unit written to \(.*\)/\1/p' "$log" | tail -1)
		result="FAILED (exit $rc${artifact:+, reproducer $artifact})"
		failed=1
	fi
	line="$t: $replay; fuzzed ${FUZZ_SECONDS} s: ${execs:-?} execs (${persec:-?}/s), cov ${cov:-?}, corpus ${corp:-?}: $result"
	echo "$line"
	summary+=("$line")
done

step "summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
