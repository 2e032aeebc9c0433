#!/usr/bin/env bash
# ab-threads.sh NAME SOCKET STORAGE_PID CLIENT_PID [CASE]: one 4 s fio run (default seqread-1m-qd8) against a pair
# from bench/ab/pair-up.sh, and the user/system CPU per request of its handler agent (storage JVM) and completion
# agent (client JVM) from /proc/PID/task/TID/stat, plus both JVMs' total.
set -u
name=$1 sock=$2 sp=$3 cp=$4 case=${5:-seqread-1m-qd8}
fio_dir=$(cd "$(dirname "$0")/../fio" && pwd)
handler=$(ps -T -p "$sp" -o spid,comm | awk '/cxl-handl/{print $1}')
agent=$(ps -T -p "$cp" -o spid,comm | awk '/cxl-compl/{print $1}')
st() { awk '{print $14 + 0, $15 + 0}' "/proc/$1/task/$2/stat"; }
cpu() { local t=0 p f; for p in "$sp" "$cp"; do read -r -a f <"/proc/$p/stat"; t=$((t + f[13] + f[14])); done; echo "$t"; }
read -r hu hs <<<"$(st "$sp" "$handler")"; read -r cu cs <<<"$(st "$cp" "$agent")"; t0=$(cpu)
out=$(mktemp)
BENCH_IOENGINE=nbd BENCH_TARGET="uri=nbd+unix:///bench0?socket=$sock" BENCH_RUNTIME=4 BENCH_RAMP=1s \
    fio --output-format=json --output="$out" "$fio_dir/$case.fio" >/dev/null 2>&1
read -r hu2 hs2 <<<"$(st "$sp" "$handler")"; read -r cu2 cs2 <<<"$(st "$cp" "$agent")"; t1=$(cpu)
iops=$(jq '.jobs[0] | (if .read.io_bytes > 0 then .read else .write end) | .iops | floor' "$out"); rm -f "$out"
python3 -c "
n = max(1, $iops * 5)
print('$name $case iops $iops', 'handler usr/sys us/req %.0f/%.0f' % (($hu2 - $hu) * 1e4 / n, ($hs2 - $hs) * 1e4 / n),
      'agent usr/sys us/req %.0f/%.0f' % (($cu2 - $cu) * 1e4 / n, ($cs2 - $cs) * 1e4 / n),
      'both JVMs us/req %.0f' % (($t1 - $t0) * 1e4 / n))"
