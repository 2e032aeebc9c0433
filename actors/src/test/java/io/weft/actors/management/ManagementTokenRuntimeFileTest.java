package io.weft.actors.management;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The runtime token file the CLI reads belongs to whichever node holds the management address now. A node killed
 * with -9 leaves its file behind; the next node on that address must not let the CLI pick up the dead node's token
 * (it was refused with 401 right after a client node joined, session 5).
 */
class ManagementTokenRuntimeFileTest {

    @TempDir
    Path tmp;

    @Test
    void aJoiningNodeWithoutATokenYetRemovesTheFileADeadNodeLeftOnItsAddress() throws Exception {
        Path runtime = tmp.resolve("runtime");
        ManagementToken dead = ManagementToken.load("", Optional.of(tmp.resolve("dead")), Optional.of(runtime), true);
        Files.createDirectories(tmp.resolve("dead"));
        dead.publish("127.0.0.1", 18081); // then killed with -9: no unpublish
        String deadToken = dead.current().orElseThrow();
        assertEquals(Optional.of(deadToken), ManagementToken.findForAddress(runtime, "127.0.0.1", 18081));

        Files.createDirectories(tmp.resolve("joiner"));
        ManagementToken joiner = ManagementToken.load("", Optional.of(tmp.resolve("joiner")), Optional.of(runtime),
                false);
        joiner.publish("127.0.0.1", 18081);
        assertEquals(Optional.empty(), ManagementToken.findForAddress(runtime, "127.0.0.1", 18081),
                "while the joining node waits for the cluster's token, the CLI must find no token rather than the "
                        + "dead node's");

        joiner.adopt("the-clusters-token", "akka://weft@127.0.0.1:2552");
        assertEquals(Optional.of("the-clusters-token"),
                ManagementToken.findForAddress(runtime, "127.0.0.1", 18081));
    }

    @Test
    void aTokenAdoptedFromTheClusterReplacesTheRuntimeFileAtOnce() throws Exception {
        Path runtime = tmp.resolve("runtime");
        Files.createDirectories(tmp.resolve("node"));
        ManagementToken token = ManagementToken.load("", Optional.of(tmp.resolve("node")), Optional.of(runtime), true);
        token.publish("127.0.0.1", 18082);
        String own = token.current().orElseThrow();
        token.adopt("older-members-token", "akka://weft@127.0.0.1:2552");
        assertEquals(Optional.of("older-members-token"),
                ManagementToken.findForAddress(runtime, "127.0.0.1", 18082));
        assertFalse(Files.readString(tmp.resolve("node").resolve(ManagementToken.FILE_NAME)).contains(own));
    }
}
