# Target: nbdkit with its file plugin — the reference C server the Weft bar (docs/BENCHMARKS.md) is measured against.
# Default settings on purpose: 16 worker threads per connection (nbdkit's default), page cache on (cache=default).
nbdkit_available() {
    command -v nbdkit >/dev/null || { echo "nbdkit is not installed (Debian package nbdkit)"; return 1; }
}
nbdkit_version() { nbdkit --version 2>/dev/null | head -n1; }
nbdkit_transports() { echo unix tcp; }
nbdkit_start() { # TRANSPORT WORKDIR FILE
    local transport=$1 dir=$2 file=$3 listen
    if [[ $transport == unix ]]; then
        listen=(-U "$dir/nbdkit.sock"); TARGET_URI="nbd+unix:///vol0?socket=$dir/nbdkit.sock"
    else
        local port; port=$(bench_free_port) || return 1
        listen=(-i 127.0.0.1 -p "$port"); TARGET_URI="nbd://127.0.0.1:$port/vol0"
    fi
    # -f: stay in the foreground so the harness owns the process; -e: export name like every other target.
    bench_spawn "$dir/nbdkit-$transport.log" nbdkit -f "${listen[@]}" -e vol0 file "$file" || return 1
}
