# Target: nbdkit two-hop — the shape of a Weft client node in front of a storage node, built from nbdkit alone:
#   storage side: nbdkit file FILE, listening on TCP 127.0.0.1:PORT (the "storage node")
#   client side:  nbdkit nbd hostname=127.0.0.1 port=PORT, listening where fio connects (Unix socket or TCP)
# The client-side nbd plugin opens its own backend connection for every client connection (shared=false, the
# default), so a 4-job fio run gives 4 connections on both hops. Both nbdkits run in one process group, so the
# "server CPU" column counts both processes, as it counts both JVMs of a two-node Weft target. Defaults otherwise:
# 16 worker threads per connection in each nbdkit, page cache on.
nbdkit_two_hop_available() {
    command -v nbdkit >/dev/null || { echo "nbdkit is not installed (Debian package nbdkit)"; return 1; }
    nbdkit nbd --dump-plugin >/dev/null 2>&1 || { echo "nbdkit has no nbd plugin (Debian package nbdkit)"; return 1; }
}
nbdkit_two_hop_version() { nbdkit --version 2>/dev/null | head -n1; }
nbdkit_two_hop_transports() { echo unix tcp; }
nbdkit_two_hop_start() { # TRANSPORT WORKDIR FILE
    local transport=$1 dir=$2 file=$3 listen backend_port
    backend_port=$(bench_free_port) || return 1
    if [[ $transport == unix ]]; then
        listen="-U $dir/nbdkit-two-hop.sock"; TARGET_URI="nbd+unix:///vol0?socket=$dir/nbdkit-two-hop.sock"
    else
        local port; port=$(bench_free_port) || return 1
        listen="-i 127.0.0.1 -p $port"; TARGET_URI="nbd://127.0.0.1:$port/vol0"
    fi
    # One shell, one process group: the storage-side nbdkit in the background (it exits with its parent, which is
    # the client-side nbdkit once the shell has exec'd into it), then the client side in the foreground.
    bench_spawn "$dir/nbdkit-two-hop-$transport.log" bash -c \
        "nbdkit -f --exit-with-parent -i 127.0.0.1 -p $backend_port -e vol0 file '$file' &
         exec nbdkit -f $listen -e vol0 nbd hostname=127.0.0.1 port=$backend_port export=vol0" || return 1
    TARGET_CMD="nbdkit -f -i 127.0.0.1 -p BACKEND_PORT -e vol0 file \$FILE & nbdkit -f $listen -e vol0 nbd hostname=127.0.0.1 port=BACKEND_PORT export=vol0"
}
