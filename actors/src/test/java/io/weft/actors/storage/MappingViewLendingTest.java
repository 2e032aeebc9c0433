package io.weft.actors.storage;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.stats.IoStats;
import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A mapping's view forwards lent READs to its file store (zero-copy NBD READs through a node), unless revoked. */
class MappingViewLendingTest {
    @TempDir
    Path dir;

    @Test
    void aViewLendsTheStoresBytesAndARevokedOneLendsNothing() throws Exception {
        Path file = dir.resolve("v.img");
        Files.write(file, new byte[1 << 20]);
        IoStats stats = new IoStats("view");
        try (StoreBlockDevice store = new StoreBlockDevice(FileBackingStore.open(file, false))) {
            store.lendReads(1);
            MappingView view = new MappingView(store, false, stats);
            byte[] pattern = new byte[4096];
            for (int i = 0; i < pattern.length; i++) {
                pattern[i] = (byte) (i * 7 + 1);
            }
            int[] written = {-1};
            view.submit(IoOp.WRITE, 8192, 4096, 0, ByteBuffer.wrap(pattern), 1, (tag, s) -> written[0] = s);
            assertEquals(IoStatus.OK, written[0]);

            int[] status = {-1};
            byte[] lent = new byte[4096];
            boolean accepted = view.trySubmitLend(8192, 4096, 0, 2, (tag, s, base, at, loan) -> {
                status[0] = s;
                base.duplicate().position(at).get(lent);
                view.releaseLoan(loan);
            });
            assertTrue(accepted, "a buffered file store lends through the view");
            assertEquals(IoStatus.OK, status[0]);
            assertArrayEquals(pattern, lent, "the lent bytes are the store's data");
            assertEquals(1, stats.snapshot().op(IoOp.READ).ops(), "a lent READ counts in the view's stats");
            assertTrue(view.drained());

            assertFalse(view.trySubmitLend(8192, 100, 0, 3, (tag, s, base, at, loan) -> status[0] = -2),
                    "an invalid READ is left to the ordinary path");
            view.revoke();
            assertFalse(view.trySubmitLend(8192, 4096, 0, 4, (tag, s, base, at, loan) -> status[0] = -3),
                    "a revoked view lends nothing");
            assertEquals(IoStatus.OK, status[0], "no completion for a refused lending READ");
        }
    }
}
