#!/usr/bin/env bash
# compare.sh SECONDS PASSES CASE...: for every pass and case, runs bench/fio/CASE.fio against every target in
# $TARGETS ("name=nbd-uri ..."), back to back, and prints "pN CASE  name IOPS p50µs  name IOPS p50µs ...".
set -u
seconds=$1 passes=$2; shift 2
fio_dir=$(cd "$(dirname "$0")/../fio" && pwd)
one() { # URI CASE
    local out; out=$(mktemp)
    BENCH_IOENGINE=nbd BENCH_TARGET="uri=$1" BENCH_RUNTIME=$seconds BENCH_RAMP=1s \
        fio --output-format=json --output="$out" "$fio_dir/$2.fio" >/dev/null 2>&1
    jq -r '.jobs[0] | (if .read.io_bytes > 0 then .read else .write end)
        | "\(.iops | floor) \(.lat_ns.percentile["50.000000"] / 1000)"' "$out" 2>/dev/null || echo "failed -"
    rm -f "$out"
}
for pass in $(seq 1 "$passes"); do
    for case in "$@"; do
        line="p$pass $case"
        for t in $TARGETS; do line+="  ${t%%=*} $(one "${t#*=}" "$case")"; done
        echo "$line"
    done
done
