package io.weft.node;

import io.weft.core.process.ChildJvm;
import io.weft.node.cli.WeftMain;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code weft ARGS...} as a child JVM ({@link ChildJvm}) with the test class path (inside a failsafe fork it holds
 * node-app and every dependency), the flags the launcher uses, and its output captured line by line.
 */
final class WeftJvm {
    private WeftJvm() {
    }

    /** Starts {@code weft ARGS...} in {@code workingDir}; {@code jvmArgs} go before the main class. */
    static ChildJvm start(Path workingDir, List<String> jvmArgs, String... args) throws IOException {
        return ChildJvm.builder(WeftMain.class).jvmOptions("-Xmx256m").jvmOptions(jvmArgs).args(args)
                .directory(workingDir).start();
    }
}
