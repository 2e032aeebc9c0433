#!/usr/bin/env bash
# What TLS costs the software RDMA provider: RdmaBench (storage child JVM, client in this JVM, TCP loopback) with
# plaintext and with weft.rdma.tls (TLS 1.3, mutual authentication) alternately, same file, same run.
#
#   bench/rdma/tls.sh CERT_DIR        # CERT_DIR: a PEM layout (weft certs init DIR --nodes a; use DIR)
#   ROUNDS=3 SECONDS_PER_CASE=5 bench/rdma/tls.sh CERT_DIR
#
# Prints RESULT lines per mode and round and the TLS/plaintext IOPS ratio per case.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
CERTS=$(readlink -f "${1:?usage: bench/rdma/tls.sh CERT_DIR}")
ROUNDS=${ROUNDS:-2}
SECONDS_PER_CASE=${SECONDS_PER_CASE:-5}
WARMUP=${WARMUP:-10}  # seconds per case before measuring: the TLS path needs its crypto JIT-compiled (docs/BENCHMARKS.md)
SIZE=${SIZE:-268435456}
CASES=${CASES:-"randread:1 randread:32 randwrite:32"}
FILE=/dev/shm/weft-rdma-tls-bench-$$.img
OUT=${OUT:-$ROOT/rdma/target/bench}
mkdir -p "$OUT"
trap 'rm -f "$FILE"' EXIT

# shellcheck source=bench/rdma/java-bench.sh
source "$ROOT/bench/rdma/java-bench.sh"
rdma_bench_classpath
fill_random "$FILE" "$SIZE"

: > "$OUT/tls.txt"
for round in $(seq "$ROUNDS"); do
  for mode in plain tls; do
    tls=""; [ "$mode" = tls ] && tls="-Dweft.bench.rdma.tls=$CERTS"
    # shellcheck disable=SC2086
    java $JAVA_OPTS $tls -cp "$CP" io.weft.rdma.RdmaBench "$FILE" "$SIZE" "$SECONDS_PER_CASE" "$WARMUP" $CASES \
      | grep '^RESULT' | sed "s/^RESULT/RESULT $mode $round/" | tee -a "$OUT/tls.txt"
  done
done
echo
echo "| case | round | plaintext IOPS | p50 / p99 us | TLS IOPS | p50 / p99 us | TLS ÷ plaintext |"
echo "|---|---|---|---|---|---|---|"
python3 - "$OUT/tls.txt" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    _, mode, rnd, rw, qd, iops, p50, p99, errors = line.split()
    rows.setdefault((rw, int(qd), rnd), {})[mode] = (float(iops), p50, p99, errors)
for (rw, qd, rnd), m in sorted(rows.items()):
    if "plain" in m and "tls" in m:
        p, t = m["plain"], m["tls"]
        print("| 4 KiB %s qd%d | %s | %.0f | %s / %s | %.0f | %s / %s | %.2fx |" % (rw, qd, rnd, p[0], p[1], p[2], t[0], t[1], t[2], t[0] / p[0]))
PY
