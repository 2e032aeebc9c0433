#!/usr/bin/env bash
# CXL transport benchmark: Java BlockDevice API through a CXL channel between two JVMs vs the local
# StoreBlockDevice in-process, same run, 4 KiB random read/write at qd1 and qd32, on a tmpfs file.
# Usage: bench/cxl/run.sh [seconds-per-case=5] [store-MiB=256] [dir=/dev/shm] [rounds=3]
# Profiling: BENCH_JAVA_OPTS="-XX:StartFlightRecording=filename=client.jfr
#   -Dweft.childJvmArgs=-XX:StartFlightRecording=filename=backend.jfr" bench/cxl/run.sh ...
set -euo pipefail
cd "$(dirname "$0")/../.."
./mvnw -B -q -o -pl cxl -am test-compile dependency:build-classpath \
    -Dmdep.outputFile=target/bench.classpath -Dmdep.includeScope=test
CP="cxl/target/test-classes:cxl/target/classes:$(cat cxl/target/bench.classpath)"
exec java --add-opens java.base/jdk.internal.misc=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED \
    --add-opens java.base/java.nio=ALL-UNNAMED -Xmx1g ${BENCH_JAVA_OPTS:-} -cp "$CP" io.weft.cxl.CxlBench "$@"
