package io.weft.core.nbd;

import io.weft.core.io.IoStatus;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;

/**
 * One request of an {@link NbdConnection} from decode to reply: its decoded header, its data buffer (with the budget
 * bytes it holds), its lent READ if any, and the part bookkeeping that completes it exactly once. Fields are owned by
 * the reader until submit, then by whoever completes.
 *
 * <p>A request reaches the device as one or more parts (a TRIM or WRITE_ZEROES longer than an {@code int}, an
 * unaligned READ wider than the device takes). Each part's tag names the slot, the slot's generation and the
 * part; {@link #liveParts} has a bit per part not yet completed, and the part that clears the last bit completes
 * the request, with the first error any part reported. A completion for a cleared bit or an older generation
 * (a device that broke the exactly-once contract) is ignored. Tag:
 * <pre>
 *  63                          32 31              16 15               0
 * +------------------------------+------------------+------------------+
 * |      generation (32 bits)    |  part (16 bits)  |  slot (16 bits)  |
 * +------------------------------+------------------+------------------+
 * </pre>
 */
final class NbdRequestSlot {
    private static final VarHandle STATE;
    private static final VarHandle LIVE_PARTS;
    private static final VarHandle FIRST_ERROR;
    private static final VarHandle BUDGET;
    private static final VarHandle LOAN_HELD;
    /** At most this many parts: a 32-bit length cut into parts of 1 GiB needs 4, an unaligned READ 2. */
    static final int MAX_PARTS = 8;
    /** The reader's own part while it submits the others (see {@link NbdRequestReader#submitParts}). */
    static final int GUARD_PART = 30;
    static final int GUARD_BIT = 1 << GUARD_PART;

    private static final int HEADER_CAPACITY = 128;
    private static final int SLOT_FREE = 0;
    private static final int SLOT_SUBMITTED = 1;
    private static final int SLOT_COMPLETED = 2;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            STATE = lookup.findVarHandle(NbdRequestSlot.class, "state", int.class);
            LIVE_PARTS = lookup.findVarHandle(NbdRequestSlot.class, "liveParts", int.class);
            FIRST_ERROR = lookup.findVarHandle(NbdRequestSlot.class, "firstError", int.class);
            BUDGET = lookup.findVarHandle(NbdRequestSlot.class, "budget", long.class);
            LOAN_HELD = lookup.findVarHandle(NbdRequestSlot.class, "loanHeld", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    final int index;
    final ByteBuffer header = ByteBuffer.allocateDirect(HEADER_CAPACITY);
    int generation;
    @SuppressWarnings("unused") // accessed through STATE
    private volatile int state;
    @SuppressWarnings("unused") // accessed through LIVE_PARTS
    private volatile int liveParts;
    @SuppressWarnings("unused") // accessed through FIRST_ERROR
    private volatile int firstError;
    ByteBuffer data;
    /** Per-part views of {@link #data} (multi-part READs only); rebuilt when the data buffer changes. */
    private ByteBuffer[] views;
    private ByteBuffer viewsOf;
    long handle;
    int command;
    long offset;
    int length;
    /** Where the reply's READ data starts in {@link #data} (non-zero for an unaligned READ). */
    int dataStart;
    boolean fastZero;
    int status;
    /** Bytes of BLOCK_STATUS descriptors in {@link #data}. */
    int extentBytes;
    /**
     * Bytes of the server's buffer budget that {@link #data} holds; given back exactly once, by whoever zeroes
     * it: the reader when it drops the buffer, or after the connection ended, the reader or the slot's late
     * completion (see {@link NbdRequestSlots#returnBudget}).
     */
    @SuppressWarnings("unused") // accessed through BUDGET
    private volatile long budget;
    /** Bytes of {@link #data} counted in the reader's allocatedBytes (reader-owned). */
    int counted;
    /** The request went to the device as a lending READ (reader-owned; for cancelling it the right way). */
    boolean lending;
    /**
     * A lending READ's loan: the device's buffer, where the data starts in it, the handle to release. Written by
     * the completing thread after it completed the slot (before it hands the slot on), read by the slot's owner.
     */
    ByteBuffer loanBase;
    int loanAt;
    long loan;
    /** 1 while the loan is unreleased; whoever takes it (CAS to 0) releases it, exactly once. */
    @SuppressWarnings("unused") // accessed through LOAN_HELD
    private volatile int loanHeld;
    /** This slot's own view of {@link #loanBase} (lent bases are shared); rebuilt when the base changes. */
    private ByteBuffer loanView;
    private ByteBuffer loanViewOf;

    NbdRequestSlot(int index) {
        this.index = index;
    }

    long tag(int part) {
        return ((long) generation << 32) | ((long) part << 16) | index;
    }

    void data(ByteBuffer d) {
        data = d;
        views = null;
        viewsOf = null;
    }

    /** A view of {@code data[at, at + length)} for part {@code part}; allocates only when the buffer changed. */
    ByteBuffer view(int part, int at, int length) {
        if (viewsOf != data) {
            views = new ByteBuffer[MAX_PARTS];
            viewsOf = data;
        }
        ByteBuffer v = views[part];
        if (v == null) {
            v = data.duplicate();
            views[part] = v;
        }
        v.clear().limit(at + length).position(at);
        return v;
    }

    /** Arms the slot for the parts in {@code partMask} (reader, before the first submit). */
    void begin(int partMask) {
        FIRST_ERROR.setRelease(this, IoStatus.OK);
        LIVE_PARTS.setRelease(this, partMask);
        submitted();
    }

    /** Records a part's completion. @return true if it was the last live part (the request is complete) */
    boolean partDone(int part, int status) {
        int bit = 1 << part;
        int live = (int) LIVE_PARTS.getVolatile(this);
        if ((live & bit) == 0) {
            return false; // not a live part: a second completion
        }
        if (status != IoStatus.OK) {
            FIRST_ERROR.compareAndSet(this, IoStatus.OK, status); // first error wins
        }
        while (!LIVE_PARTS.compareAndSet(this, live, live & ~bit)) {
            live = (int) LIVE_PARTS.getVolatile(this);
            if ((live & bit) == 0) {
                return false;
            }
        }
        return (live & ~bit) == 0;
    }

    int firstError() {
        return (int) FIRST_ERROR.getVolatile(this);
    }

    /** Bits of the parts still live: for cancelling them. */
    int liveParts() {
        return (int) LIVE_PARTS.getVolatile(this);
    }

    boolean isSubmitted() {
        return (int) STATE.getVolatile(this) == SLOT_SUBMITTED;
    }

    boolean complete() {
        return STATE.compareAndSet(this, SLOT_SUBMITTED, SLOT_COMPLETED);
    }

    void submitted() {
        STATE.setRelease(this, SLOT_SUBMITTED);
    }

    /** Takes the slot's budget bytes for giving back; 0 if they were taken already. */
    long takeBudget() {
        long b = (long) BUDGET.getVolatile(this);
        while (b != 0 && !BUDGET.compareAndSet(this, b, 0L)) {
            b = (long) BUDGET.getVolatile(this);
        }
        return b;
    }

    void holdBudget(long bytes) {
        BUDGET.setRelease(this, bytes);
    }

    /** Records the loan (a volatile store: the Dekker side of the check against tornDown in onLent). */
    void holdLoan(ByteBuffer base, int at, long handle) {
        loanBase = base;
        loanAt = at;
        loan = handle;
        LOAN_HELD.setVolatile(this, 1);
    }

    /** Takes the loan for releasing it: true for exactly one caller per loan. */
    boolean takeLoan() {
        return (int) LOAN_HELD.getVolatile(this) == 1 && LOAN_HELD.compareAndSet(this, 1, 0);
    }

    /** The lent data {@code loanBase[loanAt, loanAt + length)} through this slot's own view. */
    ByteBuffer lentData() {
        if (loanViewOf != loanBase) {
            loanView = loanBase.duplicate();
            loanViewOf = loanBase;
        }
        loanView.clear().limit(loanAt + length).position(loanAt);
        return loanView;
    }

    void free() {
        generation++;
        STATE.setRelease(this, SLOT_FREE);
    }
}
