# Target placeholder: Weft with storage and client in two JVMs over the software RDMA provider on TCP loopback.
# The RDMA transport's owner provides the real definition in bench/rdma/target.sh (same functions as every file here,
# named weft_rdma_*); until that file exists the target is reported as not available.
weft_rdma_available() { echo "the RDMA transport target is not defined yet (bench/rdma/target.sh has not landed)"; return 1; }
weft_rdma_version() { echo "-"; }
weft_rdma_transports() { echo unix; }
weft_rdma_start() { return 1; }
if [[ -f $BENCH_DIR/rdma/target.sh ]]; then
    # shellcheck source=/dev/null
    source "$BENCH_DIR/rdma/target.sh"
fi
