#!/usr/bin/env bash
# nbdkit-up.sh: nbdkit (file plugin, defaults) on the pairs' backing file, socket /tmp/weft-ab/nbdkit.sock
set -u
mkdir -p /tmp/weft-ab /dev/shm/weft-ab-data
[[ -f /dev/shm/weft-ab-data/vol0.img ]] || head -c $((512 << 20)) /dev/urandom >/dev/shm/weft-ab-data/vol0.img
setsid nbdkit -f -U /tmp/weft-ab/nbdkit.sock -e vol0 file /dev/shm/weft-ab-data/vol0.img \
    >/tmp/weft-ab/nbdkit.log 2>&1 </dev/null &
echo $! >/tmp/weft-ab/nbdkit.pid
