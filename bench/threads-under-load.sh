#!/usr/bin/env bash
# How much AR decoding slows down when another process competes for the CPU, for several thread counts,
# side by side. With more than one thread, every op of the forward pass (about 300 for pycoder-16m) ends at a
# barrier, where ggml's waiting workers spin, even while the thread they wait for is descheduled. On an idle
# machine spinning is the fastest; beside a busy loop, 2 threads fall far below 1 thread. Every variant runs
# `cllm run --decoder ar --json` REPEAT times, interleaved, first on the idle machine, then beside each
# number of busy loops in BUSY (`sh` loops, killed on exit); the table holds median tok/s and the ratio to
# the 1-thread idle figure. Run it on an otherwise idle machine (it warns when it is not): the spread between
# runs under load is large, so read the ratios, not the last digit.
# Usage: bench/threads-under-load.sh [MODEL] (env: TOKENS=128, REPEAT=3, BUSY="1" (e.g. "1 2"),
#        PROMPT="def fib(n):", TIMEOUT=300 seconds a run, CLLM_BIN=bin/cllm.js)
set -euo pipefail
cd "$(dirname "$0")/.."

model=${1:-../shared/models/pycoder-16m.gguf}
tokens=${TOKENS:-128}
repeat=${REPEAT:-3}
busy_levels=${BUSY:-1}
prompt=${PROMPT:-def fib(n):}
timeout_s=${TIMEOUT:-300}
cllm_bin=${CLLM_BIN:-bin/cllm.js}
cores=$(nproc)

# name | --threads (empty: cllm's default, all cores) | environment of the cllm process
variants=(
  "1 thread|1|"
  "$cores threads, fixed|$cores|"
  "default (adaptive, up to $cores)||"
)

[ -f "$model" ] || { echo "no model at $model" >&2; exit 2; }
out=$(mktemp -d)
busy_pids=()
cleanup() {
  for pid in "${busy_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$out"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One run: prints tok/s, or "fail".
run_once() {
  local threads=$1 envs=$2 args=()
  [ -n "$threads" ] && args=(--threads "$threads")
  # shellcheck disable=SC2086  # $envs holds zero or more NAME=VALUE words
  if env $envs timeout "$timeout_s" node "$cllm_bin" run -m "$model" --decoder ar --max-tokens "$tokens" "${args[@]}" \
      --json "$prompt" > "$out/run.json" 2> "$out/run.err"; then
    node -e 'const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).stats;
      console.log(s.tokensPerSecond.toFixed(1))' "$out/run.json" 2>/dev/null || echo fail
  else
    echo fail
  fi
}

median() { # reads numbers (and "fail") on stdin
  sort -g | awk '$1 != "fail" { v[n++] = $1 } END { if (n == 0) print "fail"; else print v[int((n - 1) / 2)] }'
}

echo "model $model, $tokens tokens, $repeat repeats, $cores cores; $(uptime | sed 's/.*load average/load average/')" >&2
# CPU busy over one second, in cores (Linux only): other work skews every column, the idle one most.
cpu_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
if [ -r /proc/stat ]; then
  read -r busy0 total0 < <(cpu_jiffies); sleep 1; read -r busy1 total1 < <(cpu_jiffies)
  busy_cores=$(awk -v b=$((busy1 - busy0)) -v t=$((total1 - total0)) -v n="$cores" 'BEGIN { printf "%.2f", t ? n * b / t : 0 }')
  if awk -v c="$busy_cores" 'BEGIN { exit !(c > 0.2) }'; then
    echo "warning: the machine is not idle ($busy_cores cores busy before the start): the figures will be off" >&2
  fi
fi
levels=(0 $busy_levels)
for level in "${levels[@]}"; do
  while [ "${#busy_pids[@]}" -lt "$level" ]; do
    sh -c 'while :; do :; done' &
    busy_pids+=("$!")
  done
  for r in $(seq "$repeat"); do
    for i in "${!variants[@]}"; do
      IFS='|' read -r name threads envs <<< "${variants[$i]}"
      tps=$(run_once "$threads" "$envs")
      echo "$tps" >> "$out/$level.$i"
      printf '  %s busy loop(s), %s, run %s: %s tok/s\n' "$level" "$name" "$r" "$tps" >&2
    done
  done
done
for pid in "${busy_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
busy_pids=()

base=$(median < "$out/0.0")
ratio() { awk -v a="$1" -v b="$base" 'BEGIN { if (a == "fail" || b == "fail" || b == 0) print "-"; else printf "%.2fx", a / b }'; }
header="| variant |"
rule="| --- |"
for level in "${levels[@]}"; do
  case $level in
    0) label=idle ;;
    1) label="1 busy loop" ;;
    *) label="$level busy loops" ;;
  esac
  header+=" $label tok/s | ratio |"
  rule+=" ---: | ---: |"
done
echo
echo "$header"
echo "$rule"
for i in "${!variants[@]}"; do
  IFS='|' read -r name _ _ <<< "${variants[$i]}"
  row="| $name |"
  for level in "${levels[@]}"; do
    m=$(median < "$out/$level.$i")
    row+=" $m | $(ratio "$m") |"
  done
  echo "$row"
done
echo
echo "tok/s: median of $repeat runs of $tokens tokens; ratio: to 1 thread on the idle machine."
