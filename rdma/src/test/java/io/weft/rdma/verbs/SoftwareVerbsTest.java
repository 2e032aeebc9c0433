package io.weft.rdma.verbs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.rdma.TestIo;
import io.weft.rdma.verbs.soft.SoftwareProvider;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The software provider enforces what an RNIC enforces: keys, access rights, bounds, posted receives. */
class SoftwareVerbsTest {
    static final ConnectionOptions OPTIONS = new ConnectionOptions(64 * 1024, 16, 16);

    SoftwareProvider provider;
    ProtectionDomain serverPd;
    ProtectionDomain clientPd;
    CompletionQueue serverCq;
    CompletionQueue clientCq;
    VerbsListener listener;
    final AtomicReference<VerbsConnection> accepted = new AtomicReference<>();
    final Recorder serverEvents = new Recorder();
    final Recorder clientEvents = new Recorder();
    MemoryRegion target;
    MemoryRegion source;
    VerbsConnection client;

    static final class Recorder implements CompletionHandler {
        final List<String> events = new ArrayList<>();

        @Override
        public void onReceive(VerbsConnection c, long wrId, int byteLength) {
            events.add("recv " + wrId + " " + byteLength);
        }

        @Override
        public void onWriteWithImmediate(VerbsConnection c, long wrId, int immediate, int byteLength) {
            events.add("imm " + wrId + " " + immediate + " " + byteLength);
        }

        @Override
        public void onError(VerbsConnection c, int status, String reason) {
            events.add("error " + WcStatus.name(status));
        }
    }

    /** The provider under test (subclasses run every test over TLS). */
    SoftwareProvider newProvider() throws Exception {
        return new SoftwareProvider();
    }

    @BeforeEach
    void connect() throws Exception {
        provider = newProvider();
        serverPd = provider.createProtectionDomain();
        clientPd = provider.createProtectionDomain();
        serverCq = provider.createCompletionQueue("server");
        clientCq = provider.createCompletionQueue("client");
        target = serverPd.register(ByteBuffer.allocateDirect(8192), Access.REMOTE_WRITE);
        source = clientPd.register(ByteBuffer.allocateDirect(8192), Access.LOCAL_WRITE);
        listener = provider.listen(new InetSocketAddress("127.0.0.1", 0), request -> {
            try {
                accepted.set(request.accept(serverPd, serverCq, OPTIONS, new byte[] {7}, c -> {
                    for (int i = 0; i < 4; i++) {
                        c.postReceive(target, 4096, 1024, 100 + i);
                    }
                }));
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        client = provider.connect(listener.localAddress(), null, clientPd, clientCq, OPTIONS, new byte[] {1, 2},
                Duration.ofSeconds(5), ConnectionSetup.NONE);
        assertEquals(7, client.peerPrivateData().get(0));
        TestIo.await("accept", Duration.ofSeconds(5), () -> accepted.get() != null);
        assertEquals(2, accepted.get().peerPrivateData().remaining());
    }

    @AfterEach
    void close() {
        client.close();
        listener.close();
        provider.close();
    }

    void pump(Recorder expectServer, int serverEventsWanted, int clientEventsWanted) throws Exception {
        TestIo.await("completions", Duration.ofSeconds(5), () -> {
            serverCq.poll(serverEvents, 16);
            clientCq.poll(clientEvents, 16);
            return serverEvents.events.size() >= serverEventsWanted && clientEvents.events.size() >= clientEventsWanted;
        });
    }

    @Test
    void writeWithImmediateLandsInsideTheRegionAndConsumesAReceive() throws Exception {
        source.buffer().put(0, (byte) 42).put(99, (byte) 43);
        assertTrue(client.postWriteWithImmediate(source, 0, 100, target.address() + 1000, target.rkey(), 0x1234));
        pump(serverEvents, 1, 0);
        assertEquals(List.of("imm 100 4660 100"), serverEvents.events);
        assertEquals(42, target.buffer().get(1000));
        assertEquals(43, target.buffer().get(1099));
        assertEquals(0, target.buffer().get(1100));
    }

    @Test
    void sendLandsInThePostedReceive() throws Exception {
        source.buffer().put(5, (byte) 9);
        client.postSend(source, 5, 10);
        pump(serverEvents, 1, 0);
        assertEquals(List.of("recv 100 10"), serverEvents.events);
        assertEquals(9, target.buffer().get(4096));
    }

    @Test
    void wrongRkeyFailsBothEndsAndWritesNothing() throws Exception {
        client.postWriteWithImmediate(source, 0, 100, target.address(), target.rkey() ^ 1, 1);
        pump(serverEvents, 1, 1);
        assertEquals(List.of("error REMOTE_ACCESS_ERROR"), serverEvents.events);
        assertEquals(List.of("error REMOTE_ACCESS_ERROR"), clientEvents.events);
        assertTrue(!client.isOpen());
    }

    @Test
    void writeCrossingTheRegionEndIsRefused() throws Exception {
        source.buffer().put(0, (byte) 1);
        client.postWrite(source, 0, 16, target.address() + 8192 - 8, target.rkey());
        pump(serverEvents, 1, 1);
        assertEquals(List.of("error REMOTE_ACCESS_ERROR"), serverEvents.events);
        assertEquals(0, target.buffer().get(8192 - 8));
    }

    @Test
    void writeBeforeTheRegionStartIsRefused() throws Exception {
        client.postWrite(source, 0, 16, target.address() - 8, target.rkey());
        pump(serverEvents, 1, 1);
        assertEquals(List.of("error REMOTE_ACCESS_ERROR"), serverEvents.events);
    }

    @Test
    void regionWithoutRemoteWriteAccessIsRefused() throws Exception {
        MemoryRegion localOnly = serverPd.register(ByteBuffer.allocateDirect(4096), Access.LOCAL_WRITE);
        client.postWrite(source, 0, 16, localOnly.address(), localOnly.rkey());
        pump(serverEvents, 1, 1);
        assertEquals(List.of("error REMOTE_ACCESS_ERROR"), serverEvents.events);
    }

    @Test
    void keyOfAnotherProtectionDomainIsRefused() throws Exception {
        ProtectionDomain other = provider.createProtectionDomain();
        MemoryRegion foreign = other.register(ByteBuffer.allocateDirect(4096), Access.REMOTE_WRITE);
        client.postWrite(source, 0, 16, foreign.address(), foreign.rkey());
        pump(serverEvents, 1, 1);
        assertEquals(List.of("error REMOTE_ACCESS_ERROR"), serverEvents.events);
        assertEquals(0, foreign.buffer().get(0));
    }

    @Test
    void deregisteredRegionIsRefused() throws Exception {
        long address = target.address();
        int rkey = target.rkey();
        target.close();
        client.postWrite(source, 0, 16, address, rkey);
        pump(serverEvents, 1, 1);
        assertEquals(List.of("error REMOTE_ACCESS_ERROR"), serverEvents.events);
    }

    @Test
    void immediateWithoutPostedReceiveIsReceiverNotReady() throws Exception {
        for (int i = 0; i < 5; i++) {
            client.postWriteWithImmediate(source, 0, 0, 0, 0, i);
        }
        pump(serverEvents, 5, 1);
        assertEquals(List.of("imm 100 0 0", "imm 101 1 0", "imm 102 2 0", "imm 103 3 0",
                "error RNR_RETRY_EXCEEDED"), serverEvents.events);
    }

    @Test
    void sendLongerThanThePostedReceiveIsALengthError() throws Exception {
        client.postSend(source, 0, 2048);
        pump(serverEvents, 1, 1);
        assertEquals(List.of("error LOCAL_LENGTH_ERROR"), serverEvents.events);
    }

    @Test
    void localBufferOfAnotherDomainFailsTheSender() throws Exception {
        client.postSend(target, 0, 16); // target belongs to the server's domain
        pump(serverEvents, 0, 1);
        assertEquals(List.of("error LOCAL_PROTECTION_ERROR"), clientEvents.events);
    }

    @Test
    void closeIsReportedOnBothSides() throws Exception {
        client.close();
        pump(serverEvents, 1, 1);
        assertEquals(List.of("error WR_FLUSH_ERROR"), clientEvents.events);
        assertEquals(List.of("error TRANSPORT_ERROR"), serverEvents.events);
    }
}
