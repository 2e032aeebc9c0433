# Target weft-rdma: Weft with storage and client in two JVMs, joined in one cluster, the device mapped over the
# software RDMA provider (TCP on 127.0.0.1):
#   weft node --name storage --roles storage --data-dir S          (S/vol0.img = a copy of the backing file)
#   weft node --name client  --roles client  --seed STORAGE_CLUSTER --nbd-unix SOCK --nbd-listen 127.0.0.1:PORT
#   weft map bench0 --storage storage --path S/vol0.img --transport rdma --node CLIENT_HTTP
# fio talks NBD to the client node, which forwards every request to the storage node over the transport.
# Sourced by bench/targets/weft-rdma.sh (and, for the shared helpers, by bench/cxl/target.sh); the launcher and its
# checks come from bench/targets/weft.sh.
# shellcheck source=/dev/null
[[ $(type -t weft_launcher) == function ]] || source "$BENCH_DIR/targets/weft.sh"

# The two nodes and the map run under one wrapper process (the target's process group), so the harness measures
# both JVMs' CPU as "server CPU" and stops both with one signal. The wrapper is written into the work dir because
# it must outlive this function; every step logs to the wrapper's log, which the report quotes on failure.
weft_pair_write_wrapper() { # SCRIPT
    cat >"$1" <<'WRAPPER'
#!/usr/bin/env bash
# weft node pair for the benchmark: storage + client, then one map. Arguments:
#   LAUNCHER DIR TRANSPORT STORAGE_DATA REGION(optional) NBD_PORT SOCK
set -u
launcher=$1 dir=$2 transport=$3 storage_data=$4 region=$5 nbd_port=$6 sock=$7
pids=()
finish() {
    trap - EXIT TERM INT
    ((${#pids[@]})) && kill -TERM "${pids[@]}" 2>/dev/null
    wait
    [[ -n $region ]] && rm -f -- "$region"
}
trap finish EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

free_port() {
    local port
    for _ in {1..100}; do
        port=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return 0; }
    done
    return 1
}

wait_node_ready() { # PID LOG — polls for the node's "weft node ready:" line
    local pid=$1 log=$2 deadline=$((SECONDS + 180))
    until grep -q '^weft node ready:' "$log" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || { echo "node exited during start-up: $(tail -n 5 "$log" | tr '\n' ' ')"; return 1; }
        ((SECONDS < deadline)) || { echo "node not ready after 180 s (see $log)"; return 1; }
        sleep 0.2
    done
}

common=()
if [[ $transport == cxl ]]; then
    [[ -n $region ]] || { echo "no region for the cxl transport"; exit 1; }
    # 1 MiB slots: fio's nbd engine does not split requests, and the export advertises the slot size as its
    # largest request (the seqread-1m case); 64 entries cover the deepest case (32). The mapping takes
    # weft.cxl.channels = WEFT_BENCH_CXL_CHANNELS (default 1) channels of 64 MiB of data, in a region of twice as
    # many (2 with the default, as before this setting).
    channels=${WEFT_BENCH_CXL_CHANNELS:-1}
    "$launcher" cxl format "$region" --channels $((2 * channels)) --ring-depth 64 --slot-size 1MiB || exit 1
    printf 'weft.cxl.regions = ["%s"]\nweft.cxl.channels = %d\n' "$region" "$channels" \
        >"$dir/weft-$transport-nodes.conf"
else
    # software provider on loopback; its sessions take at most 128 KiB per request (weft.rdma.max-io-size, the
    # default, is also the RDMA server's limit), so fio's unsplit 1 MiB reads are refused with EINVAL
    printf 'weft.rdma.provider = software\n' >"$dir/weft-$transport-nodes.conf"
fi
common=(--config "$dir/weft-$transport-nodes.conf")

storage_cluster=$(free_port) && storage_http=$(free_port) && client_cluster=$(free_port) && client_http=$(free_port) \
    || { echo "no free port"; exit 1; }

# the storage node serves no device over NBD itself, but a node insists on one NBD listener: a Unix socket it is
setpriv --pdeathsig TERM "$launcher" node "${common[@]}" --name storage --roles storage --data-dir "$storage_data" \
    --nbd-listen off --nbd-unix "$dir/weft-$transport-storage.sock" --http-listen "127.0.0.1:$storage_http" \
    --cluster-port "$storage_cluster" >"$dir/weft-$transport-storage.log" 2>&1 </dev/null &
pids+=($!)
wait_node_ready "${pids[0]}" "$dir/weft-$transport-storage.log" || exit 1
echo "storage node ready (cluster 127.0.0.1:$storage_cluster, http 127.0.0.1:$storage_http)"

mkdir -p "$dir/weft-$transport-client"
setpriv --pdeathsig TERM "$launcher" node "${common[@]}" --name client --roles client \
    --data-dir "$dir/weft-$transport-client" --nbd-listen "127.0.0.1:$nbd_port" --nbd-unix "$sock" \
    --http-listen "127.0.0.1:$client_http" --cluster-port "$client_cluster" --seed "127.0.0.1:$storage_cluster" \
    >"$dir/weft-$transport-client.log" 2>&1 </dev/null &
pids+=($!)
wait_node_ready "${pids[1]}" "$dir/weft-$transport-client.log" || exit 1
echo "client node ready (cluster 127.0.0.1:$client_cluster, http 127.0.0.1:$client_http)"

# the client learns the storage node through cluster membership: retry while it is "not found" (bounded); any
# other refusal is final (a timed-out map leaves its device behind, reconnecting)
deadline=$((SECONDS + 60))
until answer=$("$launcher" map bench0 --node "127.0.0.1:$client_http" --storage storage --path "$storage_data/vol0.img" \
        --transport "$transport" 2>&1); do
    echo "$answer"
    [[ $answer == *"not found"* ]] || exit 1
    ((SECONDS < deadline)) || { echo "storage node not found by the client for 60 s"; exit 1; }
    sleep 1
done
echo "$answer"
[[ -n $region ]] && "$launcher" cxl info "$region" --watch 300
wait
WRAPPER
    chmod +x "$1"
}

weft_pair_available() { # TRANSPORT
    weft_available || return 1
    local help; help=$("$(weft_launcher)" --help 2>&1)
    grep -qw map <<<"$help" \
        || { echo "$(weft_launcher) has no map command (launcher too old)"; return 1; }
    if [[ $1 == cxl ]]; then
        grep -qw cxl <<<"$help" \
            || { echo "$(weft_launcher) has no cxl command (weft cxl format is needed to create the region)"; return 1; }
        [[ -d /dev/shm && -w /dev/shm ]] || { echo "no writable /dev/shm for the CXL region"; return 1; }
    fi
}

weft_pair_start() { # TRANSPORT(rdma|cxl) WORKDIR FILE NBD_TRANSPORT(unix|tcp)
    local transport=$1 dir=$2 file=$3 nbd=$4 region="" storage_data nbd_port sock
    # the storage node's data dir sits next to the backing file (same file system). vol0.img is a copy, not a link:
    # the export root check resolves symlinks (a link out of the root is refused), and a hard link is the same
    # inode, which the single-node weft target holds open read-write while every target runs — the storage node's
    # image lock then refuses a second writer ("is locked by another process")
    storage_data="$(dirname "$file")/weft-$transport-storage"
    mkdir -p "$storage_data" || return 1
    cp --sparse=always "$file" "$storage_data/vol0.img" || { echo "cannot copy $file into $storage_data"; return 1; }
    if [[ $transport == cxl ]]; then
        region=$(mktemp -u /dev/shm/weft-bench-cxl.XXXXXXXX) || return 1
    fi
    nbd_port=$(bench_free_port) || return 1
    sock="$dir/weft-$transport.sock"
    weft_pair_write_wrapper "$dir/weft-$transport-pair.sh" || return 1
    # the log is named after the target and transport, so the harness quotes it when the start fails
    bench_spawn "$dir/weft-$transport-$nbd-pair.log" "$dir/weft-$transport-pair.sh" "$(weft_launcher)" "$dir" \
        "$transport" "$storage_data" "$region" "$nbd_port" "$sock" || return 1
    TARGET_CMD=""
    [[ $transport == rdma ]] && TARGET_CMD="(both nodes: weft.rdma.provider = software) "
    TARGET_CMD+="weft node --name storage --roles storage --data-dir S (S/vol0.img = a copy of \$FILE)"
    TARGET_CMD+="; weft node --name client --roles client --seed STORAGE --nbd-unix SOCK --nbd-listen 127.0.0.1:PORT"
    if [[ $transport == cxl ]]; then
        local channels=${WEFT_BENCH_CXL_CHANNELS:-1} settings="weft.cxl.regions = [REGION]"
        ((channels == 1)) || settings+=", weft.cxl.channels = $channels"
        TARGET_CMD="weft cxl format /dev/shm/REGION --channels $((2 * channels)) --ring-depth 64 --slot-size 1MiB; $TARGET_CMD (both: $settings)"
    fi
    TARGET_CMD+="; weft map bench0 --storage storage --path S/vol0.img --transport $transport"
    TARGET_READY_TIMEOUT=300
    WEFT_PAIR_PORT=$nbd_port
    WEFT_PAIR_SOCK=$sock
}

weft_pair_uri() { # UNIX|TCP
    if [[ $1 == unix ]]; then
        echo "nbd+unix:///bench0?socket=$WEFT_PAIR_SOCK"
    else
        echo "nbd://127.0.0.1:$WEFT_PAIR_PORT/bench0"
    fi
}

weft_rdma_available() { weft_pair_available rdma; }
weft_rdma_version() { weft_version; }
weft_rdma_transports() { echo unix tcp; }
weft_rdma_start() { # TRANSPORT WORKDIR FILE
    weft_pair_target_start rdma "$@"
}

# Points TARGET_* at the KIND pair, starting it first if it is not running. One pair serves both the Unix socket and
# TCP (the storage node would refuse a second rw map of the file); it is remembered in WEFT_<KIND>_PID/CMD/PORT/SOCK.
weft_pair_target_start() { # KIND(rdma|cxl) TRANSPORT WORKDIR FILE
    local kind=$1 up=${1^^}
    local pid_var=WEFT_${up}_PID cmd_var=WEFT_${up}_CMD port_var=WEFT_${up}_PORT sock_var=WEFT_${up}_SOCK
    if [[ -z ${!pid_var:-} ]] || ! group_alive "${!pid_var}"; then
        weft_pair_start "$kind" "$3" "$4" "$2" || return 1
        printf -v "$pid_var" %s "$TARGET_PID"
        printf -v "$cmd_var" %s "$TARGET_CMD"
        printf -v "$port_var" %s "$WEFT_PAIR_PORT"
        printf -v "$sock_var" %s "$WEFT_PAIR_SOCK"
    fi
    TARGET_PID=${!pid_var} TARGET_CMD=${!cmd_var} TARGET_READY_TIMEOUT=300
    WEFT_PAIR_PORT=${!port_var} WEFT_PAIR_SOCK=${!sock_var}
    TARGET_URI=$(weft_pair_uri "$2")
}
