# Target (opt-in): qemu-nbd as in qemu-nbd.sh but with --aio=io_uring instead of its default thread pool — qemu-nbd
# at its best on this kernel (one quick check here doubled its qd32 IOPS; measure it). Not in the default target list: the
# default run measures every server as shipped.
qemu_nbd_io_uring_available() {
    command -v qemu-nbd >/dev/null || { echo "qemu-nbd is not installed (Debian package qemu-utils)"; return 1; }
}
qemu_nbd_io_uring_version() { qemu-nbd --version 2>/dev/null | head -n1; }
qemu_nbd_io_uring_transports() { echo unix tcp; }
qemu_nbd_io_uring_start() { # TRANSPORT WORKDIR FILE
    local transport=$1 dir=$2 file=$3 listen
    if [[ $transport == unix ]]; then
        listen=(-k "$dir/qemu-nbd-io_uring.sock"); TARGET_URI="nbd+unix:///vol0?socket=$dir/qemu-nbd-io_uring.sock"
    else
        local port; port=$(bench_free_port) || return 1
        listen=(-b 127.0.0.1 -p "$port"); TARGET_URI="nbd://127.0.0.1:$port/vol0"
    fi
    bench_spawn "$dir/qemu-nbd-io_uring-$transport.log" qemu-nbd -f raw --cache=writeback --aio=io_uring \
        --discard=ignore --detect-zeroes=off -t --shared=8 -x vol0 "${listen[@]}" "$file" || return 1
}
