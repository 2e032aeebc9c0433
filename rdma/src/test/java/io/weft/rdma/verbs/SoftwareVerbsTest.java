package io.weft.rdma.verbs;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
        await("accept", Duration.ofSeconds(5), () -> accepted.get() != null);
        assertEquals(2, accepted.get().peerPrivateData().remaining());
    }

    @AfterEach
    void close() {
        client.close();
        listener.close();
        provider.close();
    }

    void pump(Recorder expectServer, int serverEventsWanted, int clientEventsWanted) throws Exception {
        await("completions", Duration.ofSeconds(5), () -> {
            serverCq.poll(serverEvents, 16);
            clientCq.poll(clientEvents, 16);
            return serverEvents.events.size() >= serverEventsWanted && clientEvents.events.size() >= clientEventsWanted;
        });
    }

    /**
     * Each queue polled by its own thread that sleeps on the queue with no timeout to speak of (an hour), the way an
     * agent's idle strategy does but without the periodic wake that would hide a stall: bytes that sit in a buffer no
     * selector announces (decrypted frames, whole TLS records already read, ciphertext the socket did not take)
     * show as completions that never come. The receiver takes one completion per poll, so frames stay buffered
     * between polls.
     */
    static final class SleepingPoller implements AutoCloseable {
        private final CompletionQueue cq;
        private final CompletionHandler handler;
        private final Thread thread;
        private volatile boolean running = true;
        private volatile Throwable failure;

        SleepingPoller(String name, CompletionQueue cq, CompletionHandler handler, Runnable beforeEachPoll) {
            this.cq = cq;
            this.handler = handler;
            this.thread = new Thread(() -> {
                try {
                    while (running) {
                        beforeEachPoll.run();
                        if (cq.poll(handler, 1) == 0) {
                            cq.await(java.util.concurrent.TimeUnit.HOURS.toNanos(1), () -> !running);
                        }
                    }
                } catch (Throwable t) {
                    failure = t;
                }
            }, name);
            thread.setDaemon(true);
        }

        SleepingPoller start() {
            thread.start();
            return this;
        }

        void check() {
            if (failure != null) {
                throw new AssertionError("poller failed", failure);
            }
        }

        @Override
        public void close() throws InterruptedException {
            running = false;
            cq.wakeup();
            thread.join(5_000);
        }
    }

    /** Counts completions per connection and puts every consumed receive back (what a real responder does). */
    static final class Reposting implements CompletionHandler {
        final java.util.concurrent.atomic.AtomicInteger completions = new java.util.concurrent.atomic.AtomicInteger();
        final java.util.concurrent.atomic.AtomicReference<String> error =
                new java.util.concurrent.atomic.AtomicReference<>();
        private final MemoryRegion receiveInto;
        private final java.util.function.Consumer<VerbsConnection> onCompletion;

        Reposting(MemoryRegion receiveInto, java.util.function.Consumer<VerbsConnection> onCompletion) {
            this.receiveInto = receiveInto;
            this.onCompletion = onCompletion;
        }

        @Override
        public void onReceive(VerbsConnection c, long wrId, int byteLength) {
            completed(c, wrId);
        }

        @Override
        public void onWriteWithImmediate(VerbsConnection c, long wrId, int immediate, int byteLength) {
            completed(c, wrId);
        }

        private void completed(VerbsConnection c, long wrId) {
            c.postReceive(receiveInto, 0, 1024, wrId);
            completions.incrementAndGet();
            onCompletion.accept(c);
        }

        @Override
        public void onError(VerbsConnection c, int status, String reason) {
            error.compareAndSet(null, WcStatus.name(status) + ": " + reason);
        }
    }

    @Test
    void framesPostedBackToBackAllArriveWhileBothEndsSleepOnTheirQueues() throws Exception {
        assertAllArriveWithoutFurtherTraffic(500, 100);
    }

    @Test
    void largeFramesThatOverrunTheSocketBuffersAllArriveWhileBothEndsSleep() throws Exception {
        assertAllArriveWithoutFurtherTraffic(200, 60_000); // 12 MB: partial writes, ciphertext left for OP_WRITE
    }

    /** The client posts {@code frames} writes-with-immediate at once, then only sleeps; all must complete. */
    private void assertAllArriveWithoutFurtherTraffic(int frames, int length) throws Exception {
        MemoryRegion landing = serverPd.register(ByteBuffer.allocateDirect(64 * 1024), Access.REMOTE_WRITE);
        MemoryRegion payload = clientPd.register(ByteBuffer.allocateDirect(64 * 1024), Access.LOCAL_WRITE);
        Reposting server = new Reposting(target, c -> { });
        Reposting silent = new Reposting(source, c -> { });
        java.util.concurrent.atomic.AtomicInteger posted = new java.util.concurrent.atomic.AtomicInteger();
        try (SleepingPoller s = new SleepingPoller("server-cq", serverCq, server, () -> { }).start();
             SleepingPoller c = new SleepingPoller("client-cq", clientCq, silent, () -> {
                 while (posted.get() < frames && client.postWriteWithImmediate(payload, 0, length,
                         landing.address(), landing.rkey(), posted.get())) {
                     posted.incrementAndGet();
                 }
             }).start()) {
            try {
                await("all " + frames + " frames of " + length + " bytes at the sleeping receiver",
                        Duration.ofSeconds(60), () -> server.completions.get() >= frames || server.error.get() != null);
            } catch (AssertionError e) {
                throw new AssertionError(e.getMessage() + ": " + server.completions.get() + " arrived, "
                        + posted.get() + " posted", e);
            }
            s.check();
            c.check();
            assertEquals(null, server.error.get());
            assertEquals(frames, server.completions.get());
        }
    }

    @Test
    void pingPongBetweenTwoSleepingQueuesNeverWaitsForATimeout() throws Exception {
        MemoryRegion clientInbox = clientPd.register(ByteBuffer.allocateDirect(8192), Access.LOCAL_WRITE);
        for (int i = 0; i < 4; i++) {
            client.postReceive(clientInbox, 0, 1024, i);
        }
        int rounds = 2_000;
        // The server answers every frame with a send; the client sends the next frame on each answer.
        Reposting server = new Reposting(target, c -> c.postSend(target, 0, 64));
        Reposting pinger = new Reposting(clientInbox, c -> {
            if (c.isOpen()) {
                c.postWriteWithImmediate(source, 0, 64, target.address(), target.rkey(), 0);
            }
        });
        boolean[] first = {true};
        long start = System.nanoTime();
        try (SleepingPoller s = new SleepingPoller("server-cq", serverCq, server, () -> { }).start();
             SleepingPoller c = new SleepingPoller("client-cq", clientCq, pinger, () -> {
                 if (first[0]) {
                     first[0] = false;
                     client.postWriteWithImmediate(source, 0, 64, target.address(), target.rkey(), 0);
                 }
             }).start()) {
            try {
                await(rounds + " round trips between sleeping queues", Duration.ofSeconds(60),
                        () -> pinger.completions.get() >= rounds || server.error.get() != null
                                || pinger.error.get() != null);
            } catch (AssertionError e) {
                throw new AssertionError(e.getMessage() + ": " + pinger.completions.get() + " done", e);
            }
            s.check();
            c.check();
            assertEquals(null, server.error.get());
            assertEquals(null, pinger.error.get());
        }
        System.out.printf("%s: %d round trips, %.1f us each (informative, not asserted)%n", getClass().getSimpleName(),
                rounds, (System.nanoTime() - start) / 1e3 / rounds);
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
