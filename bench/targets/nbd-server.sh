# Target: nbd-server, the reference NBD server from the nbd project.
# Defaults on purpose: 4 worker threads shared by all exports (max_threads), buffered IO, no sync/fua/flush options.
# nbd-server serves every client in a forked child and only detaches as a daemon (its -d "debug" mode serves one
# client and exits), so the harness lets it daemonize, reads its pid file and stops its whole process group.
nbd_server_available() {
    command -v nbd-server >/dev/null || { echo "nbd-server is not installed (Debian package nbd-server)"; return 1; }
}
nbd_server_version() { nbd-server -V 2>&1 | grep -m1 -o 'version.*'; }
nbd_server_transports() { echo unix tcp; }
nbd_server_start() { # TRANSPORT WORKDIR FILE
    local transport=$1 dir=$2 file=$3
    local conf="$dir/nbd-server-$transport.conf" pidfile="$dir/nbd-server-$transport.pid"
    {
        echo "[generic]"
        echo "    allowlist = false"
        if [[ $transport == unix ]]; then
            echo "    unixsock = $dir/nbd-server.sock"
            TARGET_URI="nbd+unix:///vol0?socket=$dir/nbd-server.sock"
        else
            local port; port=$(bench_free_port) || return 1
            echo "    listenaddr = 127.0.0.1"
            echo "    port = $port"
            TARGET_URI="nbd://127.0.0.1:$port/vol0"
        fi
        echo "[vol0]"
        echo "    exportname = $file"
    } > "$conf"
    TARGET_CMD="nbd-server -C $conf -p $pidfile  # config: [generic] allowlist=false, unixsock or listenaddr+port; [vol0] exportname=$file"
    nbd-server -C "$conf" -p "$pidfile" > "$dir/nbd-server-$transport.log" 2>&1 || return 1
    bench_adopt_pidfile "$pidfile" || return 1
}
