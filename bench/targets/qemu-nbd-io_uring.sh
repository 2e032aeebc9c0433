# Target (opt-in): qemu-nbd as in qemu-nbd.sh but with --aio=io_uring instead of its default thread pool — qemu-nbd
# at its best on this kernel (one quick check here doubled its qd32 IOPS; measure it). Not in the default target list: the
# default run measures every server as shipped.
# shellcheck source=qemu-nbd.sh
source "$(dirname "${BASH_SOURCE[0]}")/qemu-nbd.sh" # qemu_nbd_start_with_aio
qemu_nbd_io_uring_available() {
    command -v qemu-nbd >/dev/null || { echo "qemu-nbd is not installed (Debian package qemu-utils)"; return 1; }
}
qemu_nbd_io_uring_version() { qemu-nbd --version 2>/dev/null | head -n1; }
qemu_nbd_io_uring_transports() { echo unix tcp; }
qemu_nbd_io_uring_start() { # TRANSPORT WORKDIR FILE
    qemu_nbd_start_with_aio io_uring qemu-nbd-io_uring "$@"
}
