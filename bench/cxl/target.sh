# Target weft-cxl: Weft with storage and client in two JVMs sharing a CXL region (a tmpfs file in /dev/shm standing
# in for CXL memory), the device mapped over the cxl transport:
#   weft cxl format /dev/shm/REGION --channels 2 --ring-depth 64 --slot-size 1MiB
#   weft node --name storage --roles storage --data-dir S --config C   (S/vol0.img = a copy of the backing file)
#   weft node --name client  --roles client  --config C --seed STORAGE_CLUSTER --nbd-unix SOCK --nbd-listen PORT
#   weft map bench0 --storage storage --path S/vol0.img --transport cxl --node CLIENT_HTTP
# where C holds weft.cxl.regions = ["/dev/shm/REGION"]. The region file is removed when the pair stops.
# WEFT_BENCH_CXL_CHANNELS=N (default 1): weft.cxl.channels = N in C, and a region of 2N channels.
# Sourced by bench/targets/weft-cxl.sh; the pair helpers live in bench/rdma/target.sh.
# shellcheck source=/dev/null
[[ $(type -t weft_pair_start) == function ]] || source "$BENCH_DIR/rdma/target.sh"

weft_cxl_available() { weft_pair_available cxl; }
weft_cxl_version() { weft_version; }
weft_cxl_transports() { echo unix tcp; }
weft_cxl_start() { # TRANSPORT WORKDIR FILE
    weft_pair_target_start cxl "$@"
}
