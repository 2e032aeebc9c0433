package io.weft.cxl;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import io.weft.testkit.ManuallyCompletedBlockDevice;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link CxlBlockDevice#cancel}: the ownership rule of {@code BlockDevice} on the CXL client. A cancelled request
 * completes exactly once (ECANCELED, or its real status if that came first) and the backend's late completion is
 * consumed without touching the caller's buffer. Every completion here poisons its buffer; a copy after the
 * completion ran would show the backend's bytes instead of the poison.
 */
class CancelTest {
    private static final Duration WAIT = Duration.ofSeconds(10);
    private static final DeviceInfo INFO = new DeviceInfo(1 << 20, 512, 4096, 1 << 20, false, true, true, false,
            false, false, false, true);
    private static final byte POISON = (byte) 0xEE;
    private static final byte LATE = (byte) 0x5A;
    private Path regionPath;
    private CxlRegion region;
    private CxlHost host;

    @BeforeEach
    void setUp() throws Exception {
        regionPath = TestSupport.shmPath("cancel");
        region = CxlRegion.format(regionPath, RegionGeometry.small(), RegionHeader.FLAG_ENTRY_CRC);
        host = CxlHost.register(region, 1, "node-1", TestSupport.fastOptions());
    }

    @AfterEach
    void tearDown() {
        if (region != null) {
            region.close();
        }
        TestSupport.deleteQuietly(regionPath);
    }

    @Test
    void aCancelledReadIsNeverCopiedIntoTheCallersBufferWhenItsLateCompletionArrives() {
        ManuallyCompletedBlockDevice holding = new ManuallyCompletedBlockDevice(INFO);
        CxlBackend backend = host.createBackend(holding, "held", BackendOptions.defaults().withChannels(1));
        CxlBlockDevice dev = host.openBlkdev(backend.id(), BlkdevOptions.defaults());
        int seg = backend.segmentIds()[0];
        ByteBuffer buffer = ByteBuffer.allocateDirect(4096);
        ConcurrentLinkedQueue<Integer> statuses = new ConcurrentLinkedQueue<>();
        IoCompletion completion = (tag, status) -> {
            poison(buffer);
            statuses.add(status);
        };
        dev.submit(IoOp.READ, 0, 4096, 0, buffer, 7, completion);
        await("the READ held by the store", WAIT, () -> holding.held() == 1);

        dev.cancel(7, completion);
        await("the cancelled READ completes", WAIT, () -> !statuses.isEmpty());
        assertEquals(List.of(IoStatus.ECANCELED), List.copyOf(statuses));

        // The store answers late with data in the slot: the client consumes the completion, copies nothing.
        holding.releaseAllFilled(LATE);
        await("the late completion consumed", WAIT, () -> region.channel(seg).completionHead() == 1);
        assertAllPoison(buffer, "the late READ payload was copied into a buffer handed back by cancel");
        assertEquals(1, statuses.size(), "completed exactly once");

        // The slot was released by consuming the late completion: the channel serves the next READ normally.
        ByteBuffer next = ByteBuffer.allocateDirect(4096);
        ConcurrentLinkedQueue<Integer> nextStatus = new ConcurrentLinkedQueue<>();
        dev.submit(IoOp.READ, 4096, 4096, 0, next, 8, (tag, status) -> nextStatus.add(status));
        await("the next READ held", WAIT, () -> holding.held() == 1);
        holding.releaseAllFilled((byte) 0x33);
        await("the next READ completes", WAIT, () -> !nextStatus.isEmpty());
        assertEquals(IoStatus.OK, nextStatus.peek());
        assertEquals((byte) 0x33, next.get(4095));
        // Cancelling a request that is already complete, or one never submitted, does nothing.
        dev.cancel(8, (tag, status) -> nextStatus.add(status));
        dev.cancel(7, completion);
        assertEquals(1, nextStatus.size());
        assertEquals(1, statuses.size());
        dev.close();
        backend.close();
    }

    @Test
    void aCancelledWriteCompletesAtOnceAndItsSlotIsReusedOnlyAfterTheBackendAnswered() {
        ManuallyCompletedBlockDevice holding = new ManuallyCompletedBlockDevice(INFO);
        CxlBackend backend = host.createBackend(holding, "held", BackendOptions.defaults().withChannels(1));
        CxlBlockDevice dev = host.openBlkdev(backend.id(), BlkdevOptions.defaults());
        int depth = region.geometry().ringDepth();
        ConcurrentLinkedQueue<String> done = new ConcurrentLinkedQueue<>();
        IoCompletion completion = (tag, status) -> done.add(tag + ":" + IoStatus.name(status));
        ByteBuffer payload = ByteBuffer.allocateDirect(4096);
        for (int i = 0; i < depth; i++) {
            dev.submit(IoOp.WRITE, 0, 4096, 0, payload, i, completion);
        }
        await("a full ring held", WAIT, () -> holding.held() == depth);
        for (int i = 0; i < depth; i++) {
            dev.cancel(i, completion);
        }
        assertEquals(depth, done.size());
        assertTrue(done.stream().allMatch(s -> s.endsWith(":" + IoStatus.name(IoStatus.ECANCELED))), done.toString());
        // Every slot still belongs to the backend: a new request waits for a free one (nothing is overwritten).
        ConcurrentLinkedQueue<Integer> later = new ConcurrentLinkedQueue<>();
        Thread submitter = new Thread(() -> dev.submit(IoOp.WRITE, 0, 4096, 0, payload, 99,
                (tag, status) -> later.add(status)), "late-submitter");
        submitter.start();
        assertEquals(depth, holding.submitted.get(), "no slot was handed to a new request while the backend owns it");
        holding.releaseAll(IoStatus.OK);
        await("the waiting request is served", WAIT, () -> holding.held() == 1);
        holding.releaseAll(IoStatus.OK);
        await("the waiting request completes", WAIT, () -> !later.isEmpty());
        assertEquals(IoStatus.OK, later.peek());
        assertEquals(depth, done.size(), "late completions of cancelled requests call nobody");
        dev.close();
        backend.close();
    }

    /**
     * Cancels race the store's answers (released concurrently, in random order): each request completes exactly
     * once, with OK or ECANCELED, and no buffer is written after its completion ran. Replay with
     * {@code -Dweft.cancel.seed=N}.
     */
    @Test
    void cancelRacingTheLateAnswerCompletesEachRequestExactlyOnceAndNeverTouchesItsBufferAfterwards()
            throws Exception {
        long seed = Long.getLong("weft.cancel.seed", new Random().nextLong());
        System.out.println("CancelTest race seed " + seed + " (replay with -Dweft.cancel.seed=" + seed + ")");
        Random random = new Random(seed);
        // Consumers: the completion agent alone, then the agent and the assisting submitter (this thread).
        race(random, seed, BlkdevOptions.defaults(), 60);
        race(random, seed, BlkdevOptions.submitterAssisted(), 60);
    }

    private void race(Random random, long seed, BlkdevOptions options, int rounds) throws Exception {
        ManuallyCompletedBlockDevice holding = new ManuallyCompletedBlockDevice(INFO);
        CxlBackend backend = host.createBackend(holding, "held", BackendOptions.defaults().withChannels(1));
        CxlBlockDevice dev = host.openBlkdev(backend.id(), options);
        int seg = backend.segmentIds()[0];
        int perRound = 8;
        AtomicIntegerArray calls = new AtomicIntegerArray(rounds * perRound);
        AtomicIntegerArray results = new AtomicIntegerArray(rounds * perRound);
        ByteBuffer[] buffers = new ByteBuffer[rounds * perRound];
        IoCompletion completion = (tag, status) -> {
            poison(buffers[(int) tag]);
            results.set((int) tag, status);
            calls.incrementAndGet((int) tag);
        };
        long submitted = 0;
        for (int r = 0; r < rounds; r++) {
            int n = 1 + random.nextInt(perRound);
            int first = r * perRound;
            for (int i = 0; i < n; i++) {
                buffers[first + i] = ByteBuffer.allocateDirect(4096);
                dev.submit(IoOp.READ, 4096L * i, 4096, 0, buffers[first + i], first + i, completion);
            }
            submitted += n;
            await("round " + r + " held", WAIT, () -> holding.held() == n);
            int[] order = shuffled(n, random);
            int cancels = random.nextInt(n + 1);
            Thread releaser = new Thread(() -> holding.releaseAllFilled(LATE), "releaser");
            releaser.start();
            for (int i = 0; i < cancels; i++) {
                dev.cancel(first + order[i], completion);
            }
            releaser.join();
            long expected = submitted;
            await("round " + r + " consumed", WAIT,
                    () -> region.channel(seg).completionHead() == expected);
            for (int i = 0; i < n; i++) {
                int t = first + i;
                await("request " + t + " completed", WAIT, () -> calls.get(t) > 0);
                assertEquals(1, calls.get(t), "request " + t + " completed more than once (seed " + seed + ")");
                int status = results.get(t);
                assertTrue(status == IoStatus.OK || status == IoStatus.ECANCELED,
                        "request " + t + ": " + IoStatus.name(status) + " (seed " + seed + ")");
                assertAllPoison(buffers[t], "request " + t + " (" + IoStatus.name(status)
                        + ") buffer written after its completion ran (seed " + seed + ")");
            }
        }
        dev.close();
        backend.close();
    }

    private static int[] shuffled(int n, Random random) {
        int[] a = new int[n];
        for (int i = 0; i < n; i++) {
            a[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
        return a;
    }

    private static void poison(ByteBuffer b) {
        for (int i = 0; i < b.capacity(); i++) {
            b.put(i, POISON);
        }
    }

    private static void assertAllPoison(ByteBuffer b, String what) {
        for (int i = 0; i < b.capacity(); i++) {
            if (b.get(i) != POISON) {
                throw new AssertionError(what + ": byte " + i + " is " + b.get(i));
            }
        }
    }
}
