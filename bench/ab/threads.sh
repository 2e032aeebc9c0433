#!/usr/bin/env bash
# threads.sh SOCKET CASE SECONDS PID... : one fio run of bench/fio/CASE.fio (nbd engine, export bench0 on the Unix
# SOCKET) and, for every thread of the given processes, its user + system CPU per request over the run (from
# /proc/PID/task/TID/stat; threads that ended during the run, such as an NBD connection's reader, as one line from
# /proc/PID/stat), grouped by process and thread name (the kernel keeps 15 characters of it), largest first.
# Example: bench/ab/threads.sh /tmp/weft-ab/new/nbd.sock randread-4k-qd32 8 STORAGE_PID CLIENT_PID
set -u
sock=$1 case=$2 secs=$3
shift 3
pids=("$@")
fio_dir=$(cd "$(dirname "$0")/../fio" && pwd)
snap() { # PID -> lines "pid<TAB>name<TAB>ticks"
    local p=$1 t
    # the whole process first (it includes threads that end during the run, such as an NBD connection's reader)
    awk -v p="$p" '{ s = $0; b = match(s, /\) [A-Z] /); split(substr(s, b + 2), f, " ");
        printf "%s\t%s\t%s\t%d\n", p, "all", "(process)", f[12] + f[13] }' "/proc/$p/stat"
    for t in /proc/"$p"/task/*; do
        [[ -r $t/stat ]] || continue
        # the name is field 2, in parentheses and possibly with spaces: take what is between the parentheses
        awk -v p="$p" -v tid="${t##*/}" '{ s = $0; a = index(s, "("); b = match(s, /\) [A-Z] /);
            name = substr(s, a + 1, b - a - 1); split(substr(s, b + 2), f, " ");
            printf "%s\t%s\t%s\t%d\n", p, tid, name, f[12] + f[13] }' "$t/stat"
    done
}
before=$(mktemp) after=$(mktemp) out=$(mktemp)
for p in "${pids[@]}"; do snap "$p"; done >"$before"
BENCH_IOENGINE=nbd BENCH_TARGET="uri=nbd+unix:///bench0?socket=$sock" BENCH_RUNTIME=$secs BENCH_RAMP=0s \
    fio --output-format=json --output="$out" "$fio_dir/$case.fio" >/dev/null 2>&1
for p in "${pids[@]}"; do snap "$p"; done >"$after"
ios=$(jq '[.jobs[] | .read.total_ios + .write.total_ios] | add' "$out")
python3 - "$before" "$after" "$ios" "$(getconf CLK_TCK)" <<'PY'
import re, sys
from collections import defaultdict
before, after, ios, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def load(path):
    rows = {}
    for line in open(path):
        pid, tid, name, ticks = line.rstrip("\n").split("\t")
        rows[(pid, tid)] = (name, int(ticks))
    return rows
b, a = load(before), load(after)
groups = defaultdict(int)
process = defaultdict(int)
for key, (name, ticks) in a.items():
    d = ticks - b.get(key, (name, 0))[1]
    if key[1] == "all":
        process[key[0]] = d
    elif d > 0:
        groups[(key[0], re.sub(r"[-#]?\d+$", "", name))] += d
for pid, d in process.items():
    ended = d - sum(v for (p, _), v in groups.items() if p == pid)
    if ended > 0:
        groups[(pid, "(threads that ended)")] += ended
total = sum(groups.values())
print("requests %d; CPU per request over these processes %.1f us" % (ios, total * 1e6 / hz / max(ios, 1)))
for (pid, name), d in sorted(groups.items(), key=lambda kv: -kv[1]):
    print("  pid %-8s %-28s %6.2f us/req  %5.1f %%" % (pid, name, d * 1e6 / hz / max(ios, 1), 100.0 * d / max(total, 1)))
PY
rm -f "$before" "$after" "$out"
