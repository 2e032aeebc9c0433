package io.weft.cxl;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.io.ReadLending;
import io.weft.core.store.StoreBlockDevice;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.testkit.ManuallyCompletedBlockDevice;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link CxlBlockDevice} as a {@link ReadLending} device: a lent READ hands the borrower the request's shared data
 * slot, which no other request may use until the loan is returned, exactly once; a lending READ that a force stop
 * ends completes once with an error and lends nothing; a loan still out when the blkdev closes holds the channel
 * until it is returned.
 */
class ReadLendingTest {
    private static final Duration WAIT = Duration.ofSeconds(10);
    private static final int BLOCK = 4096;
    private TestSupport.HostRig rig;
    private CxlRegion region;
    private CxlHost host;
    private Path storePath;

    /** One onLent call, as the borrower saw it. */
    private record Lent(long tag, int status, ByteBuffer base, int at, long loan) {
        byte[] bytes(int length) {
            byte[] out = new byte[length];
            base.duplicate().position(at).get(out); // the borrower's own view: base's position is never touched
            return out;
        }
    }

    @BeforeEach
    void setUp() throws Exception {
        rig = TestSupport.HostRig.open("lend");
        region = rig.region();
        host = rig.host();
        storePath = rig.storePath();
    }

    @AfterEach
    void tearDown() {
        rig.close();
    }

    @Test
    void aLentSlotHoldsTheReadDataUntilReturnedAndASecondReturnChangesNothing() throws Exception {
        StoreBlockDevice store = TestSupport.newStore(storePath, 1 << 20);
        CxlBackend backend = host.createBackend(store, "s", BackendOptions.defaults().withChannels(1));
        try (CxlBlockDevice dev = host.openBlkdev(backend.id(), BlkdevOptions.submitterAssisted())) {
            write(dev, 0, (byte) 0xA1);
            ConcurrentLinkedQueue<Lent> lent = new ConcurrentLinkedQueue<>();
            ReadLending.LoanCompletion borrower = (tag, status, base, at, loan) ->
                    lent.add(new Lent(tag, status, base, at, loan));

            assertTrue(dev.trySubmitLend(0, BLOCK, 0, 1, borrower));
            await("the first loan", WAIT, () -> lent.size() == 1);
            Lent first = lent.poll();
            assertEquals(IoStatus.OK, first.status());
            assertTrue(first.at() >= 0 && first.at() + BLOCK <= first.base().capacity(), "inside the data area");
            assertAllEqual(first.bytes(BLOCK), (byte) 0xA1, "the lent bytes are the READ's data");
            assertEquals(1, dev.loansOutstanding());

            // Two rings' worth of other requests while the loan is out: none may land in the lent slot.
            int depth = RegionGeometry.small().ringDepth();
            for (int i = 0; i < 2 * depth; i++) {
                write(dev, (long) (1 + i % 8) * BLOCK, (byte) (0x10 + i));
                ByteBuffer back = ByteBuffer.allocateDirect(BLOCK);
                assertEquals(IoStatus.OK, SyncIo.run(dev, IoOp.READ, (long) (1 + i % 8) * BLOCK, BLOCK, 0, back));
            }
            assertAllEqual(first.bytes(BLOCK), (byte) 0xA1, "the lent slot was reused while the loan was out");

            dev.releaseLoan(first.loan());
            assertEquals(0, dev.loansOutstanding(), "returned");

            // The slot goes round again; the first loan's handle, returned a second time, must not free it.
            write(dev, 0, (byte) 0xB2);
            assertTrue(dev.trySubmitLend(0, BLOCK, 0, 2, borrower));
            await("the second loan", WAIT, () -> lent.size() == 1);
            Lent second = lent.poll();
            assertEquals(IoStatus.OK, second.status());
            assertNotEquals(first.loan(), second.loan(), "every loan has its own handle");
            dev.releaseLoan(first.loan());
            assertEquals(1, dev.loansOutstanding(), "a second return of an old loan ended a newer one");
            for (int i = 0; i < 2 * depth; i++) {
                ByteBuffer back = ByteBuffer.allocateDirect(BLOCK);
                assertEquals(IoStatus.OK, SyncIo.run(dev, IoOp.READ, (long) (1 + i % 8) * BLOCK, BLOCK, 0, back));
            }
            assertAllEqual(second.bytes(BLOCK), (byte) 0xB2, "the lent slot was reused after a stale return");
            dev.releaseLoan(second.loan());
            assertEquals(0, dev.loansOutstanding());
        }
        backend.close();
    }

    @Test
    void atMostHalfTheDataSlotsAreLentAndOrdinaryRequestsKeepGoingMeanwhile() throws Exception {
        StoreBlockDevice store = TestSupport.newStore(storePath, 1 << 20);
        CxlBackend backend = host.createBackend(store, "s", BackendOptions.defaults().withChannels(1));
        try (CxlBlockDevice dev = host.openBlkdev(backend.id(), BlkdevOptions.submitterAssisted())) {
            int depth = RegionGeometry.small().ringDepth();
            ConcurrentLinkedQueue<Lent> lent = new ConcurrentLinkedQueue<>();
            ReadLending.LoanCompletion borrower = (tag, status, base, at, loan) ->
                    lent.add(new Lent(tag, status, base, at, loan));
            int accepted = 0;
            while (dev.trySubmitLend((long) (accepted % 16) * BLOCK, BLOCK, 0, accepted, borrower)) {
                accepted++;
                assertTrue(accepted <= depth, "lending never refused");
            }
            assertEquals(depth / 2, accepted, "lending share of the data slots");
            await("every loan", WAIT, () -> lent.size() == depth / 2);
            for (int i = 0; i < 2 * depth; i++) { // the other half still serves ordinary requests
                ByteBuffer back = ByteBuffer.allocateDirect(BLOCK);
                assertEquals(IoStatus.OK, SyncIo.run(dev, IoOp.READ, (long) (i % 16) * BLOCK, BLOCK, 0, back));
            }
            for (Lent l : lent) {
                assertEquals(IoStatus.OK, l.status());
                dev.releaseLoan(l.loan());
            }
            assertEquals(0, dev.loansOutstanding());
            assertTrue(dev.trySubmitLend(0, BLOCK, 0, 99, borrower), "lending again once the loans are back");
            await("the new loan", WAIT, () -> lent.size() == depth / 2 + 1);
            lent.stream().filter(l -> l.tag() == 99).forEach(l -> dev.releaseLoan(l.loan()));
        }
        backend.close();
    }

    @Test
    void aLendingReadInFlightAtForceStopCompletesOnceWithAnErrorAndLendsNothing() {
        DeviceInfo info = new DeviceInfo(1 << 20, 512, 4096, 1 << 16, false, true, true, false, false, false, false,
                true);
        ManuallyCompletedBlockDevice holding = new ManuallyCompletedBlockDevice(info);
        CxlBackend backend = host.createBackend(holding, "held", BackendOptions.defaults().withChannels(1));
        CxlBlockDevice dev = host.openBlkdev(backend.id(), BlkdevOptions.defaults());
        ConcurrentLinkedQueue<Lent> lent = new ConcurrentLinkedQueue<>();
        assertTrue(dev.trySubmitLend(0, BLOCK, 0, 5, (tag, status, base, at, loan) ->
                lent.add(new Lent(tag, status, base, at, loan))));
        await("the READ held by the store", WAIT, () -> holding.held() == 1);

        dev.forceStop();
        await("the lending READ completes", WAIT, () -> !lent.isEmpty());
        Lent only = lent.peek();
        assertEquals(IoStatus.EIO, only.status());
        assertNull(only.base(), "nothing lent with an error");
        assertEquals(0L, only.loan());
        assertEquals(0, dev.loansOutstanding());

        holding.releaseAllFilled((byte) 0x5A); // the late answer is never lent either
        assertEquals(List.of(only), List.copyOf(lent), "completed exactly once");
        assertFalse(dev.trySubmitLend(0, BLOCK, 0, 6, (tag, status, base, at, loan) -> lent.add(null)),
                "a stopped blkdev lends nothing (the ordinary path answers)");
        backend.close();
    }

    @Test
    void aLoanOutWhenTheBlkdevClosesHoldsTheChannelUntilItIsReturned() throws Exception {
        StoreBlockDevice store = TestSupport.newStore(storePath, 1 << 20);
        CxlBackend backend = host.createBackend(store, "s", BackendOptions.defaults().withChannels(1));
        int seg = backend.segmentIds()[0];
        CxlBlockDevice dev = host.openBlkdev(backend.id(), BlkdevOptions.submitterAssisted());
        write(dev, 0, (byte) 0xC3);
        ConcurrentLinkedQueue<Lent> lent = new ConcurrentLinkedQueue<>();
        assertTrue(dev.trySubmitLend(0, BLOCK, 0, 1, (tag, status, base, at, loan) ->
                lent.add(new Lent(tag, status, base, at, loan))));
        await("the loan", WAIT, () -> lent.size() == 1);
        Lent loan = lent.peek();
        assertEquals(IoStatus.OK, loan.status());

        Thread closer = new Thread(dev::close, "closer");
        closer.start();
        await("close waits for the loan", WAIT, () -> waitsForLoans(closer));
        assertNotEquals(0L, region.channel(seg).clientClaim(), "the channel was detached with a loan out");
        assertAllEqual(loan.bytes(BLOCK), (byte) 0xC3, "the lent bytes changed during the close");

        dev.releaseLoan(loan.loan());
        closer.join(WAIT.toMillis());
        assertFalse(closer.isAlive(), "close returns once the loan is back");
        assertEquals(0L, region.channel(seg).clientClaim(), "detached after the loan came back");
        dev.releaseLoan(loan.loan()); // after the close: changes nothing, throws nothing
        backend.close();
    }

    /** True while {@code closer} is parked in the close's wait for outstanding loans. */
    private static boolean waitsForLoans(Thread closer) {
        if (closer.getState() != Thread.State.TIMED_WAITING) {
            return false;
        }
        for (StackTraceElement e : closer.getStackTrace()) {
            if (e.getClassName().equals(CxlBlockDevice.class.getName()) && e.getMethodName().equals("shutdown")) {
                return true;
            }
        }
        return false;
    }

    private static void write(CxlBlockDevice dev, long offset, byte fill) {
        ByteBuffer b = ByteBuffer.allocateDirect(BLOCK);
        for (int i = 0; i < BLOCK; i++) {
            b.put(i, fill);
        }
        assertEquals(IoStatus.OK, SyncIo.run(dev, IoOp.WRITE, offset, BLOCK, 0, b));
    }

    private static void assertAllEqual(byte[] bytes, byte expected, String message) {
        for (int i = 0; i < bytes.length; i++) {
            if (bytes[i] != expected) {
                throw new AssertionError(message + ": byte " + i + " is " + bytes[i] + ", expected " + expected);
            }
        }
    }
}
