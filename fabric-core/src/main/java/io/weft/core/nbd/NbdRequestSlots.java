package io.weft.core.nbd;

import io.weft.core.io.BlockDevice;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The request slots of one {@link NbdConnection} and the memory behind them: which slots are free, which are in
 * flight, their data buffers within the connection's limit and the server's buffer budget, their lent READs, and
 * what happens to all of them when the connection gives up.
 *
 * <p>Reader-owned: the free stack, the in-flight count and {@code allocatedBytes} are touched by the reader only.
 * Slots that completed on another thread come back through {@link #returned} (the reply writer hands them back after
 * writing their replies; {@link SlotHandback} makes sure a reader parked for want of slots is woken). A slot's
 * budget bytes and its loan are given back exactly once, by whoever takes them ({@link NbdRequestSlot#takeBudget},
 * {@link NbdRequestSlot#takeLoan}): the reader, the writer, a late completion after the connection ended, or the
 * teardown.
 *
 * <p>Ownership: a slot's data buffer is the device's from submit until the request's completion (of its last part)
 * has run; only then is it read for the reply and the slot reused. A connection that gives up on requests in flight
 * cancels them ({@link #cancelInFlight}) and never reuses their slots.
 */
final class NbdRequestSlots {
    private static final Logger LOG = LoggerFactory.getLogger(NbdRequestSlots.class);
    /** Longest a reader waiting for buffer budget parks before it looks at its own finished requests again. */
    private static final long BUDGET_POLL_NANOS = 10_000_000;

    private final NbdConnection c;
    private final NbdRequestSlot[] slots;
    private final int[] freeStack;
    private int freeCount;
    private int inFlight;
    private long allocatedBytes;
    /** Slots whose replies the writer thread wrote, on their way back to the reader. */
    final SlotHandback<NbdRequestSlot> returned;
    private final java.util.function.BooleanSupplier torn;

    NbdRequestSlots(NbdConnection c, int n) {
        this.c = c;
        slots = new NbdRequestSlot[n];
        freeStack = new int[n];
        for (int i = 0; i < n; i++) {
            slots[i] = new NbdRequestSlot(i);
            freeStack[i] = n - 1 - i;
        }
        freeCount = n;
        returned = new SlotHandback<>(n, c.readerThread);
        torn = () -> c.forced || c.broken;
    }

    /** Requests submitted and not yet recycled (reader). */
    int inFlight() {
        return inFlight;
    }

    NbdRequestSlot acquire() throws IOException {
        if (freeCount == 0) {
            reclaimReturned();
            if (freeCount == 0) {
                c.replies.flushInline();
            }
            while (freeCount == 0) {
                awaitReturned();
            }
        }
        inFlight++;
        return slots[freeStack[--freeCount]];
    }

    void release(NbdRequestSlot s) {
        endLoan(s);
        s.free();
        if (s.data == null && s.counted != 0) {
            allocatedBytes -= s.counted; // the writer dropped it (see writerLoop)
            s.counted = 0;
        }
        if (s.data != null && (allocatedBytes > c.options.maxBufferedBytesPerConnection()
                || c.server.bufferBudgetWanted())) {
            dropBuffer(s);
        }
        freeStack[freeCount++] = s.index;
        inFlight--;
    }

    void reclaimReturned() {
        NbdRequestSlot s;
        while ((s = returned.poll()) != null) {
            release(s);
        }
    }

    /** Parks the reader until the writer hands slots back (or the connection is torn down). */
    void awaitReturned() throws IOException {
        returned.awaitAny(torn);
        reclaimReturned();
        if (c.forced || c.broken) {
            throw new IOException("connection closed while requests were in flight");
        }
    }

    /** Waits until every submitted request has completed and its reply has been written. */
    void awaitInFlight() throws IOException {
        c.replies.flushInline();
        reclaimReturned();
        while (inFlight > 0) {
            awaitReturned();
        }
    }

    /**
     * Gives {@code s} a data buffer of at least {@code length} bytes, within the connection's limit and the server's
     * buffer budget. When the budget is short the reader waits (its own finished requests and idle buffers go back
     * first), at most the read-stall timeout.
     *
     * @return false if no budget came within the read-stall timeout: the request is to be answered ENOMEM
     */
    boolean ensureCapacity(NbdRequestSlot s, int length) throws IOException {
        ByteBuffer d = s.data;
        if (d != null && d.capacity() >= length) {
            return true;
        }
        int capacity = Math.max(4096, length);
        // Powers of two (up to the payload limit) get reused by later requests; a length past the payload limit
        // (the covering blocks of an unaligned maximum-size request) is rare and gets exactly what it needs.
        if (capacity < (1 << 30) && length <= c.maxPayload) {
            capacity = Math.max(length, Math.min(c.maxPayload, Integer.highestOneBit(capacity - 1) << 1));
        }
        long limit = c.options.maxBufferedBytesPerConnection();
        long current = d == null ? 0 : d.capacity();
        if (allocatedBytes - current + capacity > limit) {
            dropIdleBuffers();
            // Still over: wait for requests in flight to return their buffers (this slot counts as one).
            while (allocatedBytes - current + capacity > limit && inFlight > 1) {
                c.replies.flushInline();
                reclaimReturned();
                dropIdleBuffers();
                if (allocatedBytes - current + capacity > limit && inFlight > 1) {
                    awaitReturned();
                    dropIdleBuffers();
                }
            }
        }
        if (d != null) {
            dropBuffer(s); // its bytes count towards the new one
        }
        if (!c.server.tryReserveBuffer(capacity) && !awaitBudget(capacity)) {
            return false;
        }
        s.holdBudget(capacity);
        s.data(ByteBuffer.allocateDirect(capacity));
        s.counted = capacity;
        allocatedBytes += capacity;
        return true;
    }

    /**
     * Waits for {@code bytes} of buffer budget: gives back this connection's idle buffers and those of its requests
     * that finished meanwhile, and is woken when another connection gives some back. Registered as a waiter, so the
     * other connections drop their buffers after use instead of keeping them.
     */
    private boolean awaitBudget(int bytes) throws IOException {
        dropIdleBuffers();
        if (c.server.tryReserveBuffer(bytes)) {
            return true;
        }
        long limit = c.options.readStallTimeout().toNanos();
        long deadline = System.nanoTime() + limit;
        c.server.bufferWaiter(c.readerThread, true);
        try {
            while (true) {
                c.replies.flushInline();
                reclaimReturned();
                dropIdleBuffers();
                if (c.server.tryReserveBuffer(bytes)) {
                    return true;
                }
                if (c.forced || c.broken) {
                    throw new IOException("connection closed while waiting for buffer budget");
                }
                long left = limit == 0 ? BUDGET_POLL_NANOS : deadline - System.nanoTime();
                if (left <= 0) {
                    LOG.warn("{}: a request of {} bytes found no buffer memory within {} (weft.nbd.buffer-budget = "
                            + "{} bytes, all in use; waits are bounded by weft.nbd.read-stall-timeout): answered "
                            + "ENOMEM", c, bytes, c.options.readStallTimeout(), c.options.bufferBudget());
                    return false;
                }
                // Woken by a connection that gives budget back; the bound picks up this connection's own replies.
                LockSupport.parkNanos(this, Math.min(left, BUDGET_POLL_NANOS));
            }
        } finally {
            c.server.bufferWaiter(c.readerThread, false);
        }
    }

    /** Drops a slot's data buffer (reader-owned, not with the device) and gives its bytes back to the budget. */
    void dropBuffer(NbdRequestSlot s) {
        allocatedBytes -= s.counted;
        s.counted = 0;
        returnBudget(s);
        s.data(null);
    }

    void dropIdleBuffers() {
        for (int i = 0; i < freeCount; i++) {
            NbdRequestSlot idle = slots[freeStack[i]];
            if (idle.data != null) {
                dropBuffer(idle);
            }
        }
    }

    void dropBufferFromWriter(NbdRequestSlot s) {
        long bytes = s.takeBudget();
        if (bytes != 0) {
            s.data(null); // the reader fixes its allocatedBytes when it takes the slot back (release)
            c.server.returnBuffer(bytes);
        }
    }

    /**
     * The connection gives up on whatever is still in flight (forced close, broken socket, error): each live part is
     * cancelled below, so the device completes it soon instead of at its own timeout. Nothing here waits for those
     * completions, and nothing needs to: the slots and their buffers are never reused once the reader has left
     * (they belong to this connection alone, and no pool takes them back), so a buffer stays the device's for as
     * long as the device holds the request, and is freed by the garbage collector only after that.
     */
    void cancelInFlight() {
        NbdRequestSlot[] all = slots;
        BlockDevice d = c.device;
        if (all == null || d == null) {
            return;
        }
        for (NbdRequestSlot s : all) {
            if (!s.isSubmitted()) {
                continue;
            }
            int live = s.liveParts() & ~NbdRequestSlot.GUARD_BIT;
            for (int part = 0; live != 0; part++, live >>>= 1) {
                if ((live & 1) != 0) {
                    try {
                        if (s.lending) {
                            c.lender.cancelLend(s.tag(part), c);
                        } else {
                            d.cancel(s.tag(part), c);
                        }
                    } catch (RuntimeException e) {
                        LOG.warn("nbd connection {}: cancel threw", c.id, e);
                    }
                }
            }
        }
    }

    /**
     * Gives the buffer budget back once the reader has left (the connection has set tornDown): now for every buffer
     * no device holds, and for a request still with the device (cancelled by {@link #cancelInFlight}) when its
     * completion runs ({@link NbdConnection#onComplete}). Both sides look at the other's store (tornDown, the slot's
     * state) and {@link NbdRequestSlot#takeBudget} makes sure only one of them gives the bytes back.
     */
    void returnBuffersAtEnd() {
        for (NbdRequestSlot s : slots) {
            if (!s.isSubmitted()) {
                returnBudget(s);
            }
            endLoan(s); // a reply that will never be written (the slot's completion ends a later loan itself)
        }
    }

    /**
     * Gives a slot's loan back to the device, if it holds one not given back yet (any owner of the slot, or the
     * teardown; {@link NbdRequestSlot#takeLoan} picks exactly one).
     */
    void endLoan(NbdRequestSlot s) {
        if (s.takeLoan()) {
            long loan = s.loan;
            s.loanBase = null;
            releaseLoan(loan);
        }
    }

    void releaseLoan(long loan) {
        try {
            c.lender.releaseLoan(loan);
        } catch (RuntimeException e) {
            LOG.warn("nbd connection {}: releasing a lent READ threw", c.id, e);
        }
    }

    void returnBudget(NbdRequestSlot s) {
        long bytes = s.takeBudget();
        if (bytes != 0) {
            c.server.returnBuffer(bytes);
        }
    }

    /** The slot this completion completed (it is then the caller's to hand on), or null. */
    NbdRequestSlot completedBy(long tag, int status) {
        int index = (int) tag & 0xffff;
        int part = ((int) tag >>> 16) & 0xffff;
        NbdRequestSlot[] all = slots;
        if (index >= all.length || part > NbdRequestSlot.GUARD_PART) {
            return null; // not ours: a misbehaving device must not corrupt another request
        }
        NbdRequestSlot s = all[index];
        if (s.generation != (int) (tag >>> 32) || !s.partDone(part, status) || !s.complete()) {
            return null; // stale or second completion, or other parts still live
        }
        s.status = s.firstError();
        return s;
    }
}
