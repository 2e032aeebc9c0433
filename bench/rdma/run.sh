#!/usr/bin/env bash
# RDMA transport benchmark: Weft's software provider over TCP loopback (Java BlockDevice API, HdrHistogram) against
# nbdkit over TCP loopback measured with fio's nbd engine, on the same tmpfs file in the same run.
#
#   bench/rdma/run.sh                # 10 s per case after 3 s warm-up, 256 MiB file
#   SECONDS_PER_CASE=20 bench/rdma/run.sh
#
# Prints one table row per case and the Weft/nbdkit IOPS ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SECONDS_PER_CASE=${SECONDS_PER_CASE:-10}
WARMUP=${WARMUP:-3}
SIZE=${SIZE:-268435456}
CASES=${CASES:-"randread:1 randread:32 randwrite:1 randwrite:32"}
FILE=/dev/shm/weft-rdma-bench-$$.img
OUT=${OUT:-$ROOT/rdma/target/bench}
mkdir -p "$OUT"

command -v nbdkit >/dev/null || { echo "nbdkit missing: apt-get install nbdkit" >&2; exit 1; }
command -v fio >/dev/null || { echo "fio missing: apt-get install fio" >&2; exit 1; }

# shellcheck source=bench/rdma/java-bench.sh
source "$ROOT/bench/rdma/java-bench.sh"
rdma_bench_classpath

cleanup() { [ -n "${NBDKIT_PID:-}" ] && kill "$NBDKIT_PID" 2>/dev/null || true; rm -f "$FILE"; }
trap cleanup EXIT

fill_random "$FILE" "$SIZE"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nbdkit -f -i 127.0.0.1 -p "$PORT" file "$FILE" &
NBDKIT_PID=$!
for _ in $(seq 100); do nbdinfo "nbd://127.0.0.1:$PORT/" >/dev/null 2>&1 && break; sleep 0.1; done

declare -A NBD_IOPS NBD_P50 NBD_P99
for c in $CASES; do
  rw=${c%%:*}; qd=${c##*:}
  fio --name=nbdkit --ioengine=nbd --uri="nbd://127.0.0.1:$PORT/" --rw="$rw" --bs=4k --iodepth="$qd" \
      --ramp_time="$WARMUP" --runtime="$SECONDS_PER_CASE" --time_based --output-format=json \
      --output="$OUT/fio-$rw-$qd.json" >/dev/null
  read -r iops p50 p99 < <(python3 - "$OUT/fio-$rw-$qd.json" "$rw" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
side = j["read"] if sys.argv[2] == "randread" else j["write"]
pct = side["clat_ns"]["percentile"]
print("%.0f %.1f %.1f" % (side["iops"], pct["50.000000"] / 1000, pct["99.000000"] / 1000))
PY
)
  NBD_IOPS[$c]=$iops; NBD_P50[$c]=$p50; NBD_P99[$c]=$p99
done
kill "$NBDKIT_PID"; wait "$NBDKIT_PID" 2>/dev/null || true; NBDKIT_PID=

# shellcheck disable=SC2086
java $JAVA_OPTS -cp "$CP" io.weft.rdma.RdmaBench "$FILE" "$SIZE" "$SECONDS_PER_CASE" "$WARMUP" $CASES \
  | tee "$OUT/weft.txt"

echo
echo "| case | nbdkit+fio IOPS | nbdkit p50 / p99 us | Weft RDMA (software) IOPS | Weft p50 / p99 us | ratio |"
echo "|---|---|---|---|---|---|"
grep '^RESULT' "$OUT/weft.txt" | while read -r _ rw qd iops p50 p99 errors; do
  c="$rw:$qd"
  ratio=$(python3 -c "print('%.2f' % ($iops / ${NBD_IOPS[$c]}))")
  echo "| 4 KiB $rw qd$qd | ${NBD_IOPS[$c]} | ${NBD_P50[$c]} / ${NBD_P99[$c]} | $iops | $p50 / $p99 | ${ratio}x |"
  [ "$errors" = 0 ] || echo "  ($errors IO errors in the Weft run)"
done
