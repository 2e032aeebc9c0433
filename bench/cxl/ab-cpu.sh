#!/usr/bin/env bash
# ab-cpu.sh CASE PASSES SECONDS NAME=URI@PID[,PID...] ...: for every pass, runs bench/fio/CASE.fio against each
# target in turn (interleaved) and prints its IOPS, p50 and the CPU time its server processes (the PIDs: both JVMs
# of a pair) used per request over the run, ramp included. The pairs come from bench/ab/pair-up.sh; the in-process
# reference is a single `weft node` on a copy of the same file (docs/benchmarks-cxl.md shows the commands).
set -u
case=$1 passes=$2 secs=$3; shift 3
fio_dir=$(cd "$(dirname "$0")/../fio" && pwd)
cpu() { local t=0 p f; for p in ${1//,/ }; do read -r -a f <"/proc/$p/stat"; t=$((t + f[13] + f[14])); done; echo "$t"; }
for pass in $(seq 1 "$passes"); do
    line="p$pass $case"
    for t in "$@"; do
        name=${t%%=*} rest=${t#*=}
        uri=${rest%%@*} pids=${rest#*@}
        out=$(mktemp)
        c0=$(cpu "$pids")
        BENCH_IOENGINE=nbd BENCH_TARGET="uri=$uri" BENCH_RUNTIME=$secs BENCH_RAMP=1s \
            fio --output-format=json --output="$out" "$fio_dir/$case.fio" >/dev/null 2>&1
        c1=$(cpu "$pids")
        read -r iops p50 < <(jq -r '.jobs[0] | (if .read.io_bytes > 0 then .read else .write end)
            | "\(.iops | floor) \(.lat_ns.percentile["50.000000"] / 1000)"' "$out" 2>/dev/null || echo "0 -")
        rm -f "$out"
        # clock ticks (10 ms) over the whole run (ramp included) per request
        us=$(python3 -c "print(round(($c1 - $c0) * 10000 / max(1, $iops * ($secs + 1)), 1))")
        line+="  $name $iops p50=$p50 cpu/req=${us}us"
    done
    echo "$line"
done
