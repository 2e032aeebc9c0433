# Target: qemu-nbd (QEMU's NBD server) on a raw file.
#   --cache=writeback  buffered IO through the page cache, flushes honoured — the same caching as every other target
#                      (O_DIRECT would also be impossible on tmpfs); it is qemu-nbd's default, spelled out.
#   --aio=threads      qemu's default thread-pool AIO; native AIO needs O_DIRECT.
#   --discard=ignore --detect-zeroes=off  defaults, spelled out: no extra work on writes.
#   -t --shared=8      keep running across clients and allow several at once (fio probes the size on one
#                      connection before it opens the measuring one).
qemu_nbd_available() {
    command -v qemu-nbd >/dev/null || { echo "qemu-nbd is not installed (Debian package qemu-utils)"; return 1; }
}
qemu_nbd_version() { qemu-nbd --version 2>/dev/null | head -n1; }
qemu_nbd_transports() { echo unix tcp; }
qemu_nbd_start() { # TRANSPORT WORKDIR FILE
    qemu_nbd_start_with_aio threads qemu-nbd "$@"
}
# Starts qemu-nbd with the given --aio mode; NAME names its socket and log (the io_uring target shares this).
qemu_nbd_start_with_aio() { # AIO NAME TRANSPORT WORKDIR FILE
    local aio=$1 name=$2 transport=$3 dir=$4 file=$5 listen
    if [[ $transport == unix ]]; then
        listen=(-k "$dir/$name.sock"); TARGET_URI="nbd+unix:///vol0?socket=$dir/$name.sock"
    else
        local port; port=$(bench_free_port) || return 1
        listen=(-b 127.0.0.1 -p "$port"); TARGET_URI="nbd://127.0.0.1:$port/vol0"
    fi
    bench_spawn "$dir/$name-$transport.log" qemu-nbd -f raw --cache=writeback --aio="$aio" \
        --discard=ignore --detect-zeroes=off -t --shared=8 -x vol0 "${listen[@]}" "$file" || return 1
}
