#!/usr/bin/env bash
# Submitter assist on and off (weft.rdma.submitter-assist, see docs/rdma.md): RdmaBench in threads mode (each request
# slot resubmitted by a thread of its own, as an NBD reader does), the two settings in consecutive JVMs per pass,
# interleaved, same file. Prints RESULT lines per pass and setting and the on/off IOPS ratio and p50 per case.
#
#   bench/rdma/assist.sh
#   PASSES=4 SECONDS_PER_CASE=4 CASES="randread:1 randwrite:1" bench/rdma/assist.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
PASSES=${PASSES:-3}
SECONDS_PER_CASE=${SECONDS_PER_CASE:-4}
WARMUP=${WARMUP:-1}
SIZE=${SIZE:-268435456}
CASES=${CASES:-"randread:1 randwrite:1 randread:32 randwrite:32"}
FILE=/dev/shm/weft-rdma-assist-bench-$$.img
OUT=${OUT:-$ROOT/rdma/target/bench}
mkdir -p "$OUT"
trap 'rm -f "$FILE"' EXIT

# shellcheck source=bench/rdma/java-bench.sh
source "$ROOT/bench/rdma/java-bench.sh"
rdma_bench_classpath -Dcheckstyle.skip
fill_random "$FILE" "$SIZE"

: > "$OUT/assist.txt"
for pass in $(seq "$PASSES"); do
  for mode in on off; do
    [ "$mode" = on ] && assist=true || assist=false
    echo "pass $pass assist $mode: $(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    # shellcheck disable=SC2086
    java $JAVA_OPTS -Dweft.bench.rdma.submitters=threads \
      -Dweft.rdma.submitter-assist=$assist -cp "$CP" io.weft.rdma.RdmaBench "$FILE" "$SIZE" "$SECONDS_PER_CASE" \
      "$WARMUP" $CASES | grep '^RESULT' | sed "s/^RESULT/RESULT $mode $pass/" | tee -a "$OUT/assist.txt"
  done
done
echo
echo "| case | on ÷ off IOPS, per pass | median | p50 on / off (us), median of passes |"
echo "|---|---|---|---|"
python3 - "$OUT/assist.txt" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    _, mode, rnd, rw, qd, iops, p50, p99, errors = line.split()
    rows.setdefault((rw, int(qd)), {}).setdefault(rnd, {})[mode] = (float(iops), float(p50))
for (rw, qd), passes in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    both = [m for _, m in sorted(passes.items()) if "on" in m and "off" in m]
    ratios = [m["on"][0] / m["off"][0] for m in both]
    p50on = statistics.median(m["on"][1] for m in both)
    p50off = statistics.median(m["off"][1] for m in both)
    print("| 4 KiB %s qd%d | %s | %.2fx | %.1f / %.1f |" % (rw, qd, " / ".join("%.2f" % r for r in ratios),
          statistics.median(ratios), p50on, p50off))
PY
