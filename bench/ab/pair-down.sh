#!/usr/bin/env bash
# pair-down.sh NAME: stops a pair started by pair-up.sh (its whole process group); "all" also removes the data.
name=$1
if [[ $name == all ]]; then
    for d in /tmp/weft-ab/*/; do [[ -f $d/pid ]] && "$0" "$(basename "$d")"; done
    rm -rf /dev/shm/weft-ab-data
    exit 0
fi
pid=$(cat "/tmp/weft-ab/$name/pid" 2>/dev/null) || exit 0
kill -TERM -- "-$pid" 2>/dev/null
for _ in $(seq 1 40); do kill -0 -- "-$pid" 2>/dev/null || exit 0; sleep 0.5; done
kill -KILL -- "-$pid" 2>/dev/null; true
