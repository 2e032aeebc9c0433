# Sourced by bench/rdma/run.sh, tls.sh and assist.sh: what each needs to run io.weft.rdma.RdmaBench from this
# checkout. After `cd` to the repository root and with OUT set:
#   rdma_bench_classpath  compiles the rdma module and its tests and sets CP (our modules from this worktree's target
#                         directories, never from a local repository) and JAVA_OPTS (the opens the provider needs,
#                         -Xmx1g, then WEFT_OPTS)
#   fill_random FILE SIZE a file of SIZE bytes of random data, so reads copy real data on both sides
rdma_bench_classpath() {
    ./mvnw -B -q -o -pl rdma -am test-compile "$@"
    ./mvnw -B -q -o -pl rdma dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile="$OUT/cp.txt" \
        >/dev/null
    local root deps
    root=$(pwd)
    deps=$(tr ':' '\n' <"$OUT/cp.txt" | grep -v '/io/weft/' | paste -sd: -)
    CP="$root/rdma/target/test-classes:$root/rdma/target/classes:$root/fabric-core/target/classes"
    CP="$CP:$root/fabric-core/target/test-classes:$deps"
    JAVA_OPTS="--add-opens java.base/jdk.internal.misc=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED"
    JAVA_OPTS="$JAVA_OPTS --add-opens java.base/java.nio=ALL-UNNAMED -Xmx1g ${WEFT_OPTS:-}"
}

fill_random() {
    dd if=/dev/urandom of="$1" bs=1M count=$(($2 / 1048576)) status=none
}
