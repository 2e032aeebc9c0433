# Target: Weft single node (storage + client in one JVM, in-process device), started with the `weft` launcher:
#   weft node --data-dir DIR --nbd-listen 127.0.0.1:PORT --nbd-unix SOCK
# The node exports volume vol0 backed by DIR/vol0.img, a copy of the backing file in the same (tmpfs) directory: the
# node locks its image as qemu-nbd does, so it cannot share the very inode qemu-nbd holds open (the same data, other pages).
# The launcher is $WEFT_BIN (bench/run --weft PATH), by default ./weft at the repository root.
weft_launcher() { echo "${WEFT_BIN:-$BENCH_REPO/weft}"; }
weft_help_cache=""
weft_node_help() {
    # the launcher builds the node first when its jar is missing or older than the sources: allow for that
    [[ -n $weft_help_cache ]] || weft_help_cache=$(timeout 900 "$(weft_launcher)" node --help 2>&1)
    printf '%s\n' "$weft_help_cache"
}
weft_available() {
    local launcher; launcher=$(weft_launcher)
    [[ -x $launcher ]] || { echo "no Weft launcher at $launcher (the node launcher has not landed on this branch; try --weft PATH)"; return 1; }
    # grep on a here-string, not a pipe: with pipefail, grep -q quitting early can fail the pipeline (SIGPIPE)
    grep -q -- '--nbd-unix' <<<"$(weft_node_help)" \
        || { echo "$launcher node --help does not offer --nbd-unix (launcher not built or too old; run ./mvnw -o -q package first?)"; return 1; }
}
weft_version() { "$(weft_launcher)" --version 2>/dev/null | head -n1 || true; }
weft_transports() { echo unix tcp; }
weft_start() { # TRANSPORT WORKDIR FILE
    local transport=$1 dir=$2 file=$3 http=()
    # One node serves both the Unix socket and TCP (the node locks its volume file, so a second node on the same
    # file would be refused); with --tcp the second instance reuses the running node.
    if [[ -z ${WEFT_NODE_PID:-} ]] || ! group_alive "$WEFT_NODE_PID"; then
        # The data dir sits next to the backing file (same file system) and vol0.img is a copy: the node locks its
        # image for writing as qemu-nbd does, so it refuses a file another target (qemu-nbd) holds open read-write.
        local data
        data="$(dirname "$file")/weft-single-data"
        mkdir -p "$data"
        [[ -e $data/vol0.img ]] || cp --sparse=always "$file" "$data/vol0.img" \
            || { echo "cannot copy $file into $data"; return 1; }
        WEFT_NODE_PORT=$(bench_free_port) || return 1
        WEFT_NODE_SOCK="$dir/weft.sock"
        # never the default management port: other nodes (tests, other checkouts) may hold it
        if grep -q -- '--http-listen' <<<"$(weft_node_help)"; then
            local http_port; http_port=$(bench_free_port) || return 1
            http=(--http-listen "127.0.0.1:$http_port")
        fi
        # nor the default cluster port (25520): a test or another node on the machine may hold it
        if grep -q -- '--cluster-port' <<<"$(weft_node_help)"; then
            http+=(--cluster-port 0)
        fi
        bench_spawn "$dir/weft.log" "$(weft_launcher)" node --data-dir "$data" --export-root "$data" \
            --nbd-listen "127.0.0.1:$WEFT_NODE_PORT" --nbd-unix "$WEFT_NODE_SOCK" "${http[@]}" || return 1
        WEFT_NODE_PID=$TARGET_PID
        WEFT_NODE_CMD=$TARGET_CMD
    fi
    TARGET_PID=$WEFT_NODE_PID
    TARGET_CMD=$WEFT_NODE_CMD
    TARGET_READY_TIMEOUT=120
    if [[ $transport == unix ]]; then
        TARGET_URI="nbd+unix:///vol0?socket=$WEFT_NODE_SOCK"
    else
        TARGET_URI="nbd://127.0.0.1:$WEFT_NODE_PORT/vol0"
    fi
}
