package io.weft.core.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The writer-to-reader slot hand-back never loses a wake-up. A ping-pong: the writer hands back one slot only after
 * the reader took the previous one, so the reader finds the queue empty and parks nearly every time, and the writer's
 * offer races the reader's park on every round. A lost wake-up shows as a reader that stays parked while a slot waits
 * for it (in the connection: the reader parked for good with all its slots handed back).
 */
@Timeout(180)
class SlotHandbackTest {
    /** Rounds; the old, unfenced protocol lost a wake-up about once in 40 000 rounds on a 2-core x86 VM. */
    private static final int ROUNDS = Integer.getInteger("weft.test.handback.rounds", 400_000);
    /** No progress for this long with a slot waiting is a hang, not a slow machine (a wake-up takes microseconds). */
    private static final long HANG_NANOS = TimeUnit.SECONDS.toNanos(5);

    private volatile long offered;
    private volatile long taken;
    private volatile boolean abandon;

    @Test
    void readerIsWokenForEverySlotHandedBack() throws Exception {
        Object slot = new Object();
        @SuppressWarnings("unchecked")
        SlotHandback<Object>[] holder = new SlotHandback[1];
        Thread reader = new Thread(() -> {
            SlotHandback<Object> h = holder[0];
            long got = 0;
            while (got < ROUNDS && !abandon) {
                if (h.poll() != null) {
                    taken = ++got;
                } else {
                    h.awaitAny(() -> abandon);
                }
            }
        }, "handback-reader");
        reader.setDaemon(true);
        holder[0] = new SlotHandback<>(4, reader);
        Thread writer = new Thread(() -> {
            SlotHandback<Object> h = holder[0];
            for (long i = 0; i < ROUNDS && !abandon; i++) {
                while (taken < i && !abandon) {
                    Thread.onSpinWait();
                }
                // Vary the moment of the offer relative to the reader's park a little from round to round.
                for (long k = i & 63; k > 0; k--) {
                    Thread.onSpinWait();
                }
                h.offer(slot);
                h.signal(false);
                // Only after the signal: a volatile store between offer and signal would itself fence them (on x86
                // a volatile store drains the store buffer) and hide exactly the reordering this test is about.
                offered = i + 1;
            }
        }, "handback-writer");
        writer.setDaemon(true);
        reader.start();
        writer.start();

        long lastTaken = -1;
        long since = System.nanoTime();
        while (reader.isAlive()) {
            long t = taken;
            if (t != lastTaken) {
                lastTaken = t;
                since = System.nanoTime();
            } else if (offered > t && System.nanoTime() - since > HANG_NANOS) {
                Thread.State state = reader.getState();
                abandon = true;
                LockSupport.unpark(reader);
                fail("lost wake-up: the reader stayed parked (" + state + ") for 5 s with a slot handed back, after "
                        + t + " of " + ROUNDS + " rounds");
            }
            reader.join(10);
        }
        writer.join();
        assertEquals(ROUNDS, taken);
    }
}
