package io.weft.testkit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.mirror.LegState;
import io.weft.core.mirror.MirrorBlockDevice;
import io.weft.core.mirror.MirrorOptions;
import io.weft.core.mirror.WriteIntentBitmap;
import io.weft.testkit.FaultInjectingBlockDevice.Fault;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A WRITE the caller cancels on every leg of a ready mirror, where one leg's store executed it anyway (its answer
 * was lost, then the cancel answered ECANCELED) and the others' parts were cancelled before they ran: the mirror
 * must never leave two IN_SYNC legs that differ (reads would alternate between them).
 */
class MirrorCancelledWriteTest {
    static final long SIZE = 1 << 20;
    static final int REGION = 1 << 16;
    static final long OFFSET = 3 * 4096;
    static final int LENGTH = 4096;

    MemoryBlockDevice[] stores;
    FaultInjectingBlockDevice[] legs;
    MirrorBlockDevice mirror;

    @AfterEach
    void close() {
        if (mirror != null) {
            mirror.close();
        }
    }

    void mirror(int legCount) {
        stores = new MemoryBlockDevice[legCount];
        legs = new FaultInjectingBlockDevice[legCount];
        List<BlockDevice> devices = new ArrayList<>();
        for (int i = 0; i < legCount; i++) {
            stores[i] = new MemoryBlockDevice(MemoryBlockDevice.geometry(SIZE, REGION));
            legs[i] = new FaultInjectingBlockDevice(stores[i], "leg" + i);
            devices.add(legs[i]);
        }
        mirror = new MirrorBlockDevice(devices, WriteIntentBitmap.inMemory(SIZE, REGION),
                MirrorOptions.defaults().withWatchdog(false).withMaxInFlight(16));
    }

    static ByteBuffer pattern(int seed) {
        ByteBuffer b = ByteBuffer.allocate(LENGTH);
        for (int i = 0; i < LENGTH; i++) {
            b.put(i, (byte) (i * 7 + seed));
        }
        return b;
    }

    /** A completion that remembers the status it got. */
    static final class Answer implements IoCompletion {
        final CompletableFuture<Integer> status = new CompletableFuture<>();

        @Override
        public void onComplete(long tag, int s) {
            status.complete(s);
        }

        int await() throws Exception {
            return status.get(10, TimeUnit.SECONDS);
        }
    }

    int write(ByteBuffer data) throws Exception {
        Answer a = new Answer();
        mirror.submit(IoOp.WRITE, OFFSET, LENGTH, 0, data, 1, a);
        return a.await();
    }

    byte[] readThroughMirror() throws Exception {
        ByteBuffer b = ByteBuffer.allocate(LENGTH);
        Answer a = new Answer();
        mirror.submit(IoOp.READ, OFFSET, LENGTH, 0, b, 2, a);
        assertEquals(IoStatus.OK, a.await(), "a read through the mirror");
        return b.array();
    }

    @ParameterizedTest(name = "{0} legs, leg {1} executes the cancelled write")
    @CsvSource({"2, 0", "2, 1", "3, 0", "3, 1", "3, 2"})
    void aWriteCancelledOnEveryLegButExecutedByOneNeverLeavesTwoInSyncLegsThatDiffer(int legCount, int executing)
            throws Exception {
        mirror(legCount);
        assertEquals(IoStatus.OK, write(pattern(1)), "the old data is on every leg");

        // The new write: the executing leg's store runs it but its answer is lost (DROP); the others hold it.
        for (int i = 0; i < legCount; i++) {
            legs[i].defaultFault(i == executing ? Fault.DROP : Fault.HOLD);
        }
        Answer cancelled = new Answer();
        long tag = 77;
        mirror.submit(IoOp.WRITE, OFFSET, LENGTH, 0, pattern(2), tag, cancelled);
        for (int i = 0; i < legCount; i++) {
            legs[i].defaultFault(Fault.PASS);
        }
        assertArrayEquals(pattern(2).array(), stores[executing].snapshot(OFFSET, LENGTH),
                "leg " + executing + "'s store executed the write");
        assertTrue(!cancelled.status.isDone(), "the write waits for its legs");

        mirror.cancel(tag, cancelled); // the caller gives up (io-timeout, NBD client gone): every part is cancelled
        assertEquals(IoStatus.ECANCELED, cancelled.await(), "the caller hears its cancel");
        for (int i = 0; i < legCount; i++) {
            assertTrue(legs[i].held().isEmpty() && legs[i].droppedCount() == 0, "leg " + i + " let its part go");
        }

        byte[][] onLeg = new byte[legCount][];
        for (int i = 0; i < legCount; i++) {
            onLeg[i] = stores[i].snapshot(OFFSET, LENGTH);
        }
        StringBuilder states = new StringBuilder();
        for (int i = 0; i < legCount; i++) {
            states.append(" leg").append(i).append('=').append(mirror.legState(i))
                    .append(Arrays.equals(onLeg[i], pattern(2).array()) ? "(new)" : "(old)");
        }
        int authority = -1;
        for (int i = 0; i < legCount; i++) {
            if (mirror.legState(i) != LegState.IN_SYNC) {
                continue;
            }
            if (authority < 0) {
                authority = i;
            } else {
                assertArrayEquals(onLeg[authority], onLeg[i], "legs " + authority + " and " + i
                        + " are both IN_SYNC after the cancelled write but differ:" + states);
            }
        }
        assertTrue(authority >= 0, "one leg stays IN_SYNC:" + states);
        for (int i = 0; i < legCount; i++) {
            if (!Arrays.equals(onLeg[i], onLeg[authority])) {
                assertNotEquals(LegState.IN_SYNC, mirror.legState(i), "leg " + i + " differs:" + states);
                assertTrue(mirror.bitmap().dirtyCount() > 0, "the region leg " + i + " must get back is marked");
            }
        }
        // Reads come from one authority: every read through the mirror sees the same data.
        for (int k = 0; k < 4 * legCount; k++) {
            assertArrayEquals(onLeg[authority], readThroughMirror(), "read " + k + " through the mirror:" + states);
        }

        // The dropped legs come back (the actor layer reconnects a leg dropped on a healthy path): after the
        // resync every leg holds the authority's data.
        for (int i = 0; i < legCount; i++) {
            if (mirror.legState(i) == LegState.FAILED) {
                mirror.legReturned(i).get(10, TimeUnit.SECONDS);
            }
        }
        for (int i = 0; i < legCount; i++) {
            assertEquals(LegState.IN_SYNC, mirror.legState(i), "leg " + i + " after the resync");
            assertArrayEquals(onLeg[authority], stores[i].snapshot(OFFSET, LENGTH), "leg " + i + " after the resync");
        }
        for (int k = 0; k < 4 * legCount; k++) {
            assertArrayEquals(onLeg[authority], readThroughMirror(), "read " + k + " after the resync");
        }
    }

    /** The caller cancels after leg 0 answered OK: the legs in doubt are dropped and the caller hears OK. */
    @ParameterizedTest(name = "{0} legs")
    @CsvSource({"2", "3"})
    void aWriteCancelledAfterOneLegCompletedItDropsTheLegsInDoubt(int legCount) throws Exception {
        mirror(legCount);
        assertEquals(IoStatus.OK, write(pattern(1)));
        for (int i = 1; i < legCount; i++) {
            legs[i].defaultFault(i == 1 ? Fault.DROP : Fault.HOLD);
        }
        Answer cancelled = new Answer();
        mirror.submit(IoOp.WRITE, OFFSET, LENGTH, 0, pattern(2), 78, cancelled);
        for (int i = 0; i < legCount; i++) {
            legs[i].defaultFault(Fault.PASS);
        }
        mirror.cancel(78, cancelled);
        assertEquals(IoStatus.OK, cancelled.await(), "leg 0 has the write and the legs without it are out");
        assertEquals(LegState.IN_SYNC, mirror.legState(0));
        for (int i = 1; i < legCount; i++) {
            assertEquals(LegState.FAILED, mirror.legState(i), "leg " + i + " is in doubt");
        }
        for (int k = 0; k < 4 * legCount; k++) {
            assertArrayEquals(pattern(2).array(), readThroughMirror(), "read " + k);
        }
        for (int i = 1; i < legCount; i++) {
            mirror.legReturned(i).get(10, TimeUnit.SECONDS);
            assertArrayEquals(pattern(2).array(), stores[i].snapshot(OFFSET, LENGTH), "leg " + i + " resynced");
        }
    }
}
