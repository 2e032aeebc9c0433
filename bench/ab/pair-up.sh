#!/usr/bin/env bash
# pair-up.sh cxl|rdma NAME: starts a storage+client node pair (bench/rdma/target.sh's wrapper) in the background and
# waits until its NBD socket /tmp/weft-ab/NAME/nbd.sock answers. WEFT_ROOT: checkout whose ./weft to run.
set -u
transport=$1 name=${2:-$1}
repo=$(cd "$(dirname "$0")/../.." && pwd)
root=${WEFT_ROOT:-$repo}
export BENCH_DIR=$repo/bench BENCH_REPO=$repo
# shellcheck source=/dev/null
source "$repo/bench/targets/weft.sh"; source "$repo/bench/rdma/target.sh"
dir=/tmp/weft-ab/$name data=/dev/shm/weft-ab-data
rm -rf "$dir"; mkdir -p "$dir" "$data"
[[ -f $data/vol0.img ]] || head -c $((512 << 20)) /dev/urandom >"$data/vol0.img"
storage=$data/weft-$name-storage
# a copy, not a link: the storage node locks its image file (by inode), so two pairs cannot share one
mkdir -p "$storage"; [[ -f $storage/vol0.img ]] || cp "$data/vol0.img" "$storage/vol0.img"
region=""; [[ $transport == cxl ]] && region=/dev/shm/weft-ab-region-$name
weft_pair_write_wrapper "$dir/pair.sh"
port=$((30000 + RANDOM % 20000))
setsid "$dir/pair.sh" "$root/weft" "$dir" "$transport" "$storage" "$region" "$port" "$dir/nbd.sock" \
    >"$dir/pair.log" 2>&1 </dev/null &
echo $! >"$dir/pid"
for _ in $(seq 1 300); do
    nbdinfo --size "nbd+unix:///bench0?socket=$dir/nbd.sock" >/dev/null 2>&1 && { echo "up: $dir/nbd.sock"; exit 0; }
    sleep 1
done
echo "not up after 300 s"; tail "$dir/pair.log"; exit 1
