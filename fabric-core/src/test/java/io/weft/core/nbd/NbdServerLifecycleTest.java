package io.weft.core.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Listener and export management of NbdServer. */
@Timeout(60)
class NbdServerLifecycleTest {

    @Test
    void staleUnixSocketIsReplacedButARegularFileIsNot() throws Exception {
        try (NbdFixture fx = new NbdFixture(1 << 20)) {
            Path stale = fx.dir.resolve("stale.sock");
            try (ServerSocketChannel old = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
                old.bind(UnixDomainSocketAddress.of(stale));
            }
            assertTrue(Files.exists(stale), "closing a Unix listener leaves its file behind");
            fx.server.bindUnix(stale);
            try (RawNbdClient c = RawNbdClient.connect(UnixDomainSocketAddress.of(stale))) {
                c.go("vol0", false, false);
                assertArrayEquals(new byte[512], c.read(0, 512, 1));
            }

            Path regular = fx.dir.resolve("precious.txt");
            Files.writeString(regular, "keep me");
            assertThrows(IOException.class, () -> fx.server.bindUnix(regular));
            assertEquals("keep me", Files.readString(regular));

            fx.server.close();
            assertFalse(Files.exists(stale), "close() removes the socket files it created");
            assertFalse(Files.exists(fx.unixSocket));
            assertThrows(IOException.class, () -> fx.server.bindTcp("127.0.0.1", 0));
        }
    }

    @Test
    void clientsThatDoNotNegotiateInTimeAreClosedOthersStay() throws Exception {
        NbdServerOptions options = NbdServerOptions.defaults().withHandshakeTimeout(java.time.Duration.ofMillis(300));
        try (NbdFixture fx = new NbdFixture(1 << 20, options, d -> d)) {
            try (RawNbdClient prompt = RawNbdClient.connect(fx.tcp)) {
                prompt.go("vol0", false, false);
                // Connected after `prompt`, so its deadline is the later one.
                try (RawNbdClient idle = RawNbdClient.connect(fx.unixAddress())) {
                    idle.readGreeting();
                    assertTrue(idle.closedByServer(), "an idle client is closed at the handshake deadline");
                }
                // The negotiated connection outlived its own (earlier) deadline.
                assertArrayEquals(new byte[512], prompt.read(0, 512, 1));
            }
        }
    }

    @Test
    void exportsCanBeListedReplacedAndRemoved() throws Exception {
        try (NbdFixture fx = new NbdFixture(1 << 20)) {
            fx.server.addExport(new NbdExport("b", "", fx.device));
            assertEquals(List.of("vol0", "b"), fx.server.exportNames());
            fx.server.addExport(new NbdExport("b", "replaced", fx.device));
            assertEquals(List.of("vol0", "b"), fx.server.exportNames());
            try (RawNbdClient c = RawNbdClient.connect(fx.tcp).start()) {
                c.sendOption(NbdProtocol.OPT_LIST, new byte[0]);
                List<RawNbdClient.OptionReply> replies = c.readOptionReplies();
                assertTrue(new String(replies.get(1).data(), java.nio.charset.StandardCharsets.UTF_8)
                        .endsWith("replaced"));
            }
            fx.server.removeExport("vol0");
            fx.server.removeExport("never-existed");
            assertEquals(List.of("b"), fx.server.exportNames());
            // The default export is now the first remaining one.
            try (RawNbdClient c = RawNbdClient.connect(fx.tcp)) {
                assertEquals(1 << 20, c.go("", false, false).size());
            }
            assertThrows(IllegalArgumentException.class,
                    () -> fx.server.addExport(new NbdExport("x".repeat(4097), "", fx.device)));
        }
    }
}
