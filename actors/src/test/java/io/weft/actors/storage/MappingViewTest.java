package io.weft.actors.storage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.stats.IoStats;
import io.weft.core.store.BackingStore;
import io.weft.core.store.StoreBlockDevice;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Fencing at the store: a revoked view reports when its last admitted request has left the store. */
class MappingViewTest {

    /** A 1 MiB store whose writes wait at a gate, so a request can be held inside the store. */
    private static final class GatedStore implements BackingStore {
        final CountDownLatch entered = new CountDownLatch(1);
        final CountDownLatch gate = new CountDownLatch(1);
        volatile int writes;

        @Override public String path() { return "gated"; }
        @Override public long size() { return 1 << 20; }
        @Override public boolean readOnly() { return false; }
        @Override public int logicalBlockSize() { return 512; }
        @Override public boolean canPunchHoles() { return false; }
        @Override public void read(long offset, ByteBuffer dst) { dst.position(dst.limit()); }
        @Override public void flush() { }
        @Override public void discard(long offset, long length) { }
        @Override public void writeZeroes(long offset, long length, boolean mayPunch, boolean fastOnly) { }
        @Override public void resize(long newSize) { }
        @Override public void close() { }

        @Override
        public void write(long offset, ByteBuffer src, boolean fua) {
            entered.countDown();
            try {
                if (!gate.await(30, TimeUnit.SECONDS)) {
                    throw new IllegalStateException("gate never opened");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            src.position(src.limit());
            writes++;
        }
    }

    private static int write(MappingView view) {
        int[] status = {-1};
        view.submit(IoOp.WRITE, 0, 4096, 0, ByteBuffer.allocate(4096), 1, (tag, s) -> status[0] = s);
        return status[0];
    }

    @Test
    void aRevokedViewIsDrainedOnlyAfterItsAdmittedWriteLeftTheStore() throws Exception {
        GatedStore store = new GatedStore();
        MappingView view = new MappingView(new StoreBlockDevice(store), false, new IoStats("t"));
        assertTrue(view.drained(), "nothing in flight yet");
        CompletableFuture<Integer> held = CompletableFuture.supplyAsync(() -> write(view));
        assertTrue(store.entered.await(30, TimeUnit.SECONDS), "the write reached the store");

        view.revoke();
        assertFalse(view.drained(), "the admitted write is still at the store after the revoke");
        assertEquals(IoStatus.ESHUTDOWN, write(view), "a request after the revoke never reaches the store");
        assertFalse(view.drained());

        store.gate.countDown();
        assertEquals(IoStatus.OK, held.get(30, TimeUnit.SECONDS));
        assertTrue(view.drained(), "drained once the admitted write completed");
        assertEquals(1, store.writes);
    }
}
