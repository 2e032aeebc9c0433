# Target placeholder: Weft with storage and client in two JVMs over the CXL shared-memory transport.
# The CXL transport's owner provides the real definition in bench/cxl/target.sh (same functions as every file here,
# named weft_cxl_*); until that file exists the target is reported as not available.
weft_cxl_available() { echo "the CXL transport target is not defined yet (bench/cxl/target.sh has not landed)"; return 1; }
weft_cxl_version() { echo "-"; }
weft_cxl_transports() { echo unix; }
weft_cxl_start() { return 1; }
if [[ -f $BENCH_DIR/cxl/target.sh ]]; then
    # shellcheck source=/dev/null
    source "$BENCH_DIR/cxl/target.sh"
fi
