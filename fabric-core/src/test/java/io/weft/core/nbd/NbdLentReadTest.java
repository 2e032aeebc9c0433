package io.weft.core.nbd;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.ForwardingBlockDevice;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.io.ReadLending;
import io.weft.core.io.SplittingBlockDevice;
import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Zero-copy READ replies ({@link ReadLending}): a READ the device lends is answered from the lent bytes, every loan
 * is released exactly once and never before its reply was written, and a connection that goes away with loans out
 * releases them too. The lending device below poisons a slot when it is released, so a reply read from a released
 * loan shows up as wrong data at the client.
 *
 * <p>Randomized: the seed is printed; replay with {@code -Dweft.test.seed=N}.
 */
@Timeout(120)
class NbdLentReadTest {
    private static final byte POISON = (byte) 0xDB;

    /**
     * Lends READs from a pool of slots in one shared direct buffer (as a CXL data area or an RDMA region would):
     * a READ is copied from the store into a free slot and the slot is lent; {@link #releaseLoan} poisons and frees
     * it. No free slot: the READ is not lent. Completions inline, or on a thread of its own ({@code async}), or held
     * until the test lets them go ({@link #hold}).
     */
    static final class PoolLendingDevice extends ForwardingBlockDevice implements ReadLending {
        private record Held(int slot, long offset, int length, long tag, LoanCompletion completion) {
        }

        private final StoreBlockDevice store;
        private final int slotSize;
        private final ByteBuffer region;
        private final boolean[] busy;
        private final ExecutorService completer;
        private final List<Held> held = new ArrayList<>();
        private boolean hold;
        final AtomicInteger lent = new AtomicInteger();
        final AtomicInteger released = new AtomicInteger();
        final AtomicInteger badReleases = new AtomicInteger();
        final AtomicInteger notLent = new AtomicInteger();
        final AtomicInteger cancels = new AtomicInteger();

        PoolLendingDevice(StoreBlockDevice store, int slots, int slotSize, boolean async) {
            super(store);
            this.store = store;
            this.slotSize = slotSize;
            this.region = ByteBuffer.allocateDirect(slots * slotSize);
            this.busy = new boolean[slots];
            this.completer = async ? Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(r, "lending-completer");
                t.setDaemon(true);
                return t;
            }) : null;
        }

        synchronized void hold(boolean on) {
            hold = on;
        }

        synchronized int heldCount() {
            return held.size();
        }

        /** Completes every held READ with OK and a loan, as a device whose answers come after all. */
        void completeHeld() {
            List<Held> all;
            synchronized (this) {
                all = new ArrayList<>(held);
                held.clear();
            }
            for (Held h : all) {
                lendNow(h.slot(), h.offset(), h.length(), h.tag(), h.completion());
            }
        }

        @Override
        public boolean trySubmitLend(long offset, int length, int flags, long tag, LoanCompletion completion) {
            int slot = length > slotSize ? -1 : claimSlot();
            if (slot < 0) {
                notLent.incrementAndGet();
                return false;
            }
            synchronized (this) {
                if (hold) {
                    held.add(new Held(slot, offset, length, tag, completion));
                    return true;
                }
            }
            if (completer != null) {
                completer.execute(() -> lendNow(slot, offset, length, tag, completion));
            } else {
                lendNow(slot, offset, length, tag, completion);
            }
            return true;
        }

        private synchronized int claimSlot() {
            for (int i = 0; i < busy.length; i++) {
                if (!busy[i]) {
                    busy[i] = true;
                    return i;
                }
            }
            return -1;
        }

        private void lendNow(int slot, long offset, int length, long tag, LoanCompletion completion) {
            ByteBuffer view = region.duplicate();
            view.clear().limit(slot * slotSize + length).position(slot * slotSize);
            int status = store.execute(IoOp.READ, offset, length, 0, view);
            if (status != IoStatus.OK) {
                free(slot);
                completion.onLent(tag, status, null, 0, 0L);
                return;
            }
            lent.incrementAndGet();
            completion.onLent(tag, IoStatus.OK, region, slot * slotSize, slot);
        }

        @Override
        public void releaseLoan(long loan) {
            int slot = (int) loan;
            synchronized (this) {
                if (slot < 0 || slot >= busy.length || !busy[slot]) {
                    badReleases.incrementAndGet();
                    return;
                }
                for (int i = 0; i < slotSize; i++) {
                    region.put(slot * slotSize + i, POISON);
                }
            }
            released.incrementAndGet();
            free(slot);
        }

        private synchronized void free(int slot) {
            busy[slot] = false;
        }

        @Override
        public void cancelLend(long tag, LoanCompletion completion) {
            cancels.incrementAndGet(); // ignored on purpose: the held READs complete later, with loans
        }

        @Override
        public void close() {
            if (completer != null) {
                completer.shutdownNow();
            }
        }
    }

    private static long seed() {
        long seed = Long.getLong("weft.test.seed", System.nanoTime());
        System.out.println("NbdLentReadTest seed " + seed + " (replay with -Dweft.test.seed=" + seed + ")");
        return seed;
    }

    @ParameterizedTest(name = "completions on another thread: {0}")
    @ValueSource(booleans = {false, true})
    void lentReadsCarryTheDataAndEveryLoanIsReleasedOnceAfterItsReply(boolean async) throws Exception {
        long seed = seed();
        Random random = new Random(seed);
        PoolLendingDevice[] holder = new PoolLendingDevice[1];
        // 6 slots of 64 KiB against up to 32 READs in flight: some READs find no slot and are copied instead
        try (NbdFixture fx = new NbdFixture(8L << 20, NbdServerOptions.defaults(), d -> {
            holder[0] = new PoolLendingDevice(d, 6, 64 << 10, async);
            return holder[0];
        })) {
            PoolLendingDevice device = holder[0];
            byte[] content = new byte[8 << 20];
            random.nextBytes(content);
            try (RawNbdClient c = RawNbdClient.connect(fx.unixAddress())) {
                c.go(NbdFixture.EXPORT, true, false);
                for (int at = 0; at < content.length; at += 1 << 20) {
                    c.write(at, Arrays.copyOfRange(content, at, at + (1 << 20)), at);
                }
                for (int round = 0; round < 20; round++) {
                    int n = 1 + random.nextInt(32);
                    long[] offsets = new long[n];
                    int[] lengths = new int[n];
                    for (int i = 0; i < n; i++) {
                        lengths[i] = 4096 * (1 + random.nextInt(random.nextBoolean() ? 4 : 24)); // some > a slot
                        offsets[i] = 4096L * random.nextInt((content.length - lengths[i]) / 4096);
                        c.sendRequest(0, NbdProtocol.CMD_READ, i, offsets[i], lengths[i], null);
                    }
                    boolean[] seen = new boolean[n];
                    for (int k = 0; k < n; k++) {
                        RawNbdClient.Reply r = c.readReply(0);
                        int i = (int) r.handle();
                        assertFalse(seen[i], "two replies for handle " + i);
                        seen[i] = true;
                        assertEquals(0, r.error(), "READ " + i + " failed");
                        byte[] data = dataOf(r);
                        assertArrayEquals(Arrays.copyOfRange(content, (int) offsets[i], (int) offsets[i]
                                + lengths[i]), data, "READ " + i + " of " + lengths[i] + " bytes at " + offsets[i]
                                + " (seed " + seed + "): wrong data; poison 0xDB would mean a released loan was sent");
                    }
                }
                c.disconnect();
            }
            await("device.released.get() == device.lent.get()", Duration.ofSeconds(20),
                    () -> device.released.get() == device.lent.get(),
                    () -> device.lent.get() + " loans, " + device.released.get() + " released");
            assertTrue(device.lent.get() > 0, "no READ was lent");
            assertTrue(device.notLent.get() > 0, "no READ took the copying path (slots never ran out)");
            assertEquals(0, device.badReleases.get(), "a loan was released twice or was never lent");
        }
    }

    @Test
    void loansOfAConnectionThatWentAwayAreReleased() throws Exception {
        PoolLendingDevice[] holder = new PoolLendingDevice[1];
        NbdServerOptions options = NbdServerOptions.defaults().withCloseTimeout(Duration.ofMillis(200));
        try (NbdFixture fx = new NbdFixture(8L << 20, options, d -> {
            holder[0] = new PoolLendingDevice(d, 8, 64 << 10, false);
            return holder[0];
        })) {
            PoolLendingDevice device = holder[0];
            device.hold(true);
            try (RawNbdClient c = RawNbdClient.connect(fx.unixAddress())) {
                c.go(NbdFixture.EXPORT, true, false);
                for (int i = 0; i < 4; i++) {
                    c.sendRequest(0, NbdProtocol.CMD_READ, i, i * 65536L, 65536, null);
                }
                await("device.heldCount() == 4", Duration.ofSeconds(20), () -> device.heldCount() == 4,
                        () -> "the device holds " + device.heldCount() + " of 4");
                fx.server.close(); // drains for 200 ms, then gives up on the 4 READs
                await("device.cancels.get() == 4", Duration.ofSeconds(20), () -> device.cancels.get() == 4,
                        () -> device.cancels.get() + " of 4 READs cancelled");
                await("c::closedByServer", Duration.ofSeconds(20), c::closedByServer,
                        () -> "the server closed the connection");
            }
            device.completeHeld(); // the answers come after all, each with a loan nobody will send
            assertEquals(4, device.lent.get());
            await("device.released.get() == 4", Duration.ofSeconds(20), () -> device.released.get() == 4,
                    () -> device.released.get() + " of 4 late loans released");
            assertEquals(0, device.badReleases.get());
        }
    }

    @Test
    void aFileStoreLendsAMappingOfTheFileAndSplittingPassesLendingThrough() throws Exception {
        try (NbdFixture fx = new NbdFixture(4L << 20)) {
            byte[] bytes = new byte[1 << 20];
            new Random(1).nextBytes(bytes);
            fx.store.write(1 << 20, ByteBuffer.wrap(bytes), false);
            ByteBuffer[] base = new ByteBuffer[1];
            int[] result = {-1, -1};
            ReadLending.LoanCompletion c = (tag, status, b, at, loan) -> {
                result[0] = status;
                result[1] = at;
                base[0] = b;
            };
            ReadLending split = new SplittingBlockDevice(fx.storeDevice, 32 << 20, 4, 16);
            assertTrue(split.trySubmitLend(1 << 20, 1 << 20, 0, 7, c));
            assertEquals(IoStatus.OK, result[0]);
            assertNotNull(base[0]);
            byte[] got = new byte[1 << 20];
            base[0].duplicate().position(result[1]).get(got);
            assertArrayEquals(bytes, got, "the lent mapping holds the file's bytes");
            // beyond the end: completed with an error, nothing lent
            assertTrue(fx.storeDevice.trySubmitLend(4L << 20, 64 << 10, 0, 8, c));
            assertEquals(IoStatus.EOVERFLOW, result[0]);
            // small READs are copied unless asked for: a page fault per first touch costs more than the copy saved
            assertFalse(fx.storeDevice.trySubmitLend(1 << 20, 4096, 0, 11, c));
            assertTrue(new StoreBlockDevice(fx.store).lendReads(1).trySubmitLend(1 << 20, 4096, 0, 12, c));
            assertEquals(IoStatus.OK, result[0]);
            // and end to end: the server's reply gathered from the mapping carries the file's bytes
            try (RawNbdClient client = RawNbdClient.connect(fx.unixAddress())) {
                client.go(NbdFixture.EXPORT, false, false);
                assertArrayEquals(bytes, client.read(1 << 20, 1 << 20, 1));
                assertArrayEquals(Arrays.copyOfRange(bytes, 4096, 4096 + (64 << 10)),
                        client.read((1 << 20) + 4096, 64 << 10, 2));
            }
            // a READ the splitter would cut is never lent
            StoreBlockDevice small = new StoreBlockDevice(fx.store, false, 64 << 10);
            assertFalse(new SplittingBlockDevice(small, 1 << 20, 4, 16).trySubmitLend(0, 128 << 10, 0, 9, c));
            // switched off: the caller copies
            assertFalse(new StoreBlockDevice(fx.store).lendReads(false).trySubmitLend(0, 1 << 20, 0, 10, c));
        }
    }

    @Test
    void aLoanOutsideItsBufferIsNeverSentAndTheReadFails() throws Exception {
        // A device that lends [at, at + length) past the end of its buffer: the server must not gather from it.
        final class BadLender extends ForwardingBlockDevice implements ReadLending {
            final AtomicInteger released = new AtomicInteger();

            BadLender(BlockDevice inner) {
                super(inner);
            }

            @Override
            public boolean trySubmitLend(long offset, int length, int flags, long tag, LoanCompletion completion) {
                completion.onLent(tag, IoStatus.OK, ByteBuffer.allocateDirect(4096), 2048, 99);
                return true;
            }

            @Override
            public void releaseLoan(long loan) {
                released.incrementAndGet();
            }

            /** Leaves the wrapped device open, as before: the fixture closes it. */
            @Override
            public void close() {
            }
        }
        BadLender[] holder = new BadLender[1];
        try (NbdFixture fx = new NbdFixture(1L << 20, NbdServerOptions.defaults(), d -> {
            holder[0] = new BadLender(d);
            return holder[0];
        })) {
            try (RawNbdClient c = RawNbdClient.connect(fx.unixAddress())) {
                c.go(NbdFixture.EXPORT, true, false);
                c.sendRequest(0, NbdProtocol.CMD_READ, 1, 0, 4096, null);
                RawNbdClient.Reply r = c.readReply(0);
                assertEquals(1, r.handle());
                assertEquals(5, r.error(), "NBD_EIO expected for a lent range outside its buffer");
                c.write(0, new byte[4096], 2); // the connection goes on
            }
            assertEquals(1, holder[0].released.get(), "the bad loan was given back");
        }
    }

    @Test
    void aDirectIoStoreDoesNotLend() throws Exception {
        java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("weft-lend-");
        java.nio.file.Path file = dir.resolve("v.img");
        try (FileBackingStore store = FileBackingStore.createSparse(file, 1 << 20, true)) {
            assertNull(store.readMapping(0, 4096), "O_DIRECT bypasses the page cache on purpose: no mapping");
        } catch (java.io.IOException e) {
            // a file system without O_DIRECT (tmpfs): nothing to check here
        } finally {
            java.nio.file.Files.deleteIfExists(file);
            java.nio.file.Files.deleteIfExists(dir);
        }
    }

    private static byte[] dataOf(RawNbdClient.Reply r) {
        // a structured OFFSET_DATA chunk: 8 bytes of offset, then the data
        return Arrays.copyOfRange(r.payload(), 8, r.payload().length);
    }
}
