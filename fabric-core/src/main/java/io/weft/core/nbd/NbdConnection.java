package io.weft.core.nbd;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoFlags;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoRequests;
import io.weft.core.io.IoStatus;
import io.weft.core.io.ReadLending;
import io.weft.core.tls.TlsChannel;
import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SocketChannel;
import java.util.concurrent.locks.LockSupport;
import org.agrona.concurrent.ManyToOneConcurrentArrayQueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client connection: handshake, then the transmission phase.
 *
 * <p>Threads (at most two per connection):
 * <ul>
 *   <li>The <b>reader</b> blocks on the socket, reads as much as the socket has into a receive buffer, decodes every
 *   complete request in it (flyweight {@link NbdRequestHeader}), validates it ({@link IoRequests#check}) and submits
 *   it to the device. When the device completes inline (a page-cache file store does), the completion lands on the
 *   reader itself: the reply is queued locally and every queued reply goes out in one gathering write when the
 *   receive buffer holds no further complete request, before any blocking read, or when much data is pending. So a
 *   burst of N requests costs one read and one write system call, and there is no thread hand-off at all.</li>
 *   <li>The <b>writer</b> exists only once a device completes on another thread. Such completions go through a
 *   lock-free many-to-one queue to the writer, which batches their replies into gathering writes and hands the
 *   request slots back to the reader through a one-to-one queue ({@link SlotHandback}, whose fenced store-then-load
 *   protocol makes sure a reader parked for want of slots is always woken). Device threads never block on the
 *   socket.</li>
 * </ul>
 * Both write under one lock, so replies never interleave; in the inline case only the reader takes it (uncontended).
 *
 * <p>Requests live in pre-allocated slots (one per in-flight request, {@link NbdServerOptions#maxInFlightPerConnection}),
 * each with a small direct header buffer and a direct data buffer that grows on demand and is kept for reuse within
 * {@link NbdServerOptions#maxBufferedBytesPerConnection}. Nothing is allocated per request in steady state.
 *
 * <p>Ownership: a slot's data buffer is the device's from submit until the request's completion (of its last part)
 * has run; only then is it read for the reply and the slot reused. A connection that gives up on requests in flight
 * cancels them ({@link BlockDevice#cancel}) and never reuses their slots (see {@link #cancelInFlight}).
 *
 * <p>Limits (see {@link NbdServerOptions}): every data buffer is reserved from the server-wide buffer budget before it
 * is allocated, and given back when it is dropped. For the server's watchdog the reader and the writer only bump
 * progress marks (a release store, no clock, no system call); the watchdog owns the clock and closes a connection
 * whose marks stood still for a timeout ({@link #checkProgress}).
 *
 * <p>Zero-copy READ replies: when the device lends its bytes ({@link ReadLending}; a buffered file store does, through
 * a read-only mapping), an aligned READ is submitted as a lending READ and needs no request buffer: its reply is
 * gathered straight from the lent bytes into the socket, and the loan is released once the reply was written (or
 * the connection gave up on it). Who owns the lent bytes: the device lends them at the completion; from then the
 * slot's owner (the reader for an inline completion, the writer for another thread's) only reads them, for the
 * reply, and ends the loan before the slot is reused ({@link #endLoan}); a loan that arrives after the connection
 * has left is released at once, and one the connection has not ended when it leaves is released then
 * ({@link #returnBuffersAtEnd}) — the slot's loan flag makes sure exactly one of them releases it. Plaintext only:
 * over TLS the reply is encrypted from a copy anyway.
 *
 * <p>TLS: after NBD_OPT_STARTTLS the reader reads and the reply path writes through a
 * {@link io.weft.core.tls.TlsChannel} over the same socket ({@link #in}, {@link #out}); the threads, the write lock and
 * the progress marks stay as they are (see docs/nbd.md, "TLS").
 *
 * <p>Block sizes: a client that did not ask for {@code NBD_INFO_BLOCK_SIZE} is on the protocol's defaults (minimum
 * block size 1); its unaligned requests are made aligned here, a WRITE by a read-modify-write that is a barrier on
 * this connection (see {@link #unalignedWrite}; docs/nbd.md says what it does not guarantee across connections).
 */
final class NbdConnection implements IoCompletion, ReadLending.LoanCompletion, Runnable {
    private static final Logger LOG = LoggerFactory.getLogger(NbdConnection.class);

    /** Pending reply bytes that trigger a write even though more requests are still buffered. */
    private static final int FLUSH_THRESHOLD = 256 << 10;
    /** Descriptors per BLOCK_STATUS reply at most (the protocol allows returning fewer than asked). */
    private static final int MAX_EXTENTS = 1024;
    private static final int HEADER_CAPACITY = 128;
    /**
     * Empty polls the writer spins through before it parks: completions from a fast transport often come in quick
     * succession, and a few microseconds of spinning are cheaper than a park/unpark round trip for each of them.
     */
    private static final int WRITER_SPINS = 100;

    private static final int SLOT_FREE = 0;
    private static final int SLOT_SUBMITTED = 1;
    private static final int SLOT_COMPLETED = 2;

    /**
     * One request from decode to reply. Fields are owned by the reader until submit, then by whoever completes.
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
    static final class Slot {
        private static final VarHandle STATE;
        private static final VarHandle LIVE_PARTS;
        private static final VarHandle FIRST_ERROR;
        private static final VarHandle BUDGET;
        private static final VarHandle LOAN_HELD;
        /** At most this many parts: a 32-bit length cut into parts of 1 GiB needs 4, an unaligned READ 2. */
        static final int MAX_PARTS = 8;
        /** The reader's own part while it submits the others (see {@link #submitParts}). */
        static final int GUARD_PART = 30;
        static final int GUARD_BIT = 1 << GUARD_PART;

        static {
            try {
                MethodHandles.Lookup lookup = MethodHandles.lookup();
                STATE = lookup.findVarHandle(Slot.class, "state", int.class);
                LIVE_PARTS = lookup.findVarHandle(Slot.class, "liveParts", int.class);
                FIRST_ERROR = lookup.findVarHandle(Slot.class, "firstError", int.class);
                BUDGET = lookup.findVarHandle(Slot.class, "budget", long.class);
                LOAN_HELD = lookup.findVarHandle(Slot.class, "loanHeld", int.class);
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
        private ByteBuffer data;
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
         * completion (see {@link #returnBudget}).
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

        Slot(int index) {
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

    private final long id;
    private final NbdServer server;
    /** The socket: closed and shut down here whether or not TLS runs over it. */
    private final SocketChannel channel;
    /**
     * Where requests are read from (reader-owned) and replies written to: the socket, or after NBD_OPT_STARTTLS the
     * {@link TlsChannel} over it. Set by the reader when the handshake ends, before any writer exists.
     */
    private ReadableByteChannel in;
    private volatile GatheringByteChannel out;
    /** Non-null when the client negotiated TLS. */
    private TlsChannel tls;
    private final NbdServerOptions options;
    private final String peer;
    private final Thread readerThread;
    private final Object writeLock = new Object();
    /** Part size of TRIM and WRITE_ZEROES: 1 GiB, a multiple of every block size, so a 32-bit length is 4 parts. */
    static final int ZEROING_PART = 1 << 30;

    // Negotiated in the handshake.
    private volatile NbdExport export;
    private BlockDevice device;
    /** The device's lending side when it lends READs and the connection is plaintext; else null. */
    private volatile ReadLending lender;
    /** Longest the reader waits in {@link BlockDevice#awaitCompletions} before it blocks on the socket. */
    private static final long AWAIT_COMPLETIONS_NANOS = 1_000_000;
    /** Longest a reader waiting for buffer budget parks before it looks at its own finished requests again. */
    private static final long BUDGET_POLL_NANOS = 10_000_000;
    private boolean structured;
    private boolean baseAllocation;
    private int transmissionFlags;
    private int maxPayload;
    /**
     * The client did not agree to the advertised block sizes (EXPORT_NAME, or GO without NBD_INFO_BLOCK_SIZE), so
     * the protocol's defaults apply: minimum block size 1. Unaligned requests are then made aligned here.
     */
    private boolean defaultBlockSizes;
    /** Edge blocks of a read-modify-write (reader-owned). */
    private ByteBuffer bounce;
    private final SyncCompletion sync = new SyncCompletion();

    // Reader-owned state.
    private Slot[] slots;
    private int[] freeStack;
    private int freeCount;
    private int inFlight;
    private Slot[] inlineReady;
    private int inlineReadyCount;
    private long inlineReadyBytes;
    private ByteBuffer[] readerGather;
    private ByteBuffer receive;
    private long allocatedBytes;
    private final NbdRequestHeader request = new NbdRequestHeader();
    private final NbdExtentWriter extents = new NbdExtentWriter();

    // Cross-thread state.
    private ManyToOneConcurrentArrayQueue<Slot> asyncCompleted;
    private SlotHandback<Slot> returned;
    private final java.util.function.BooleanSupplier torn = () -> this.forced || this.broken;
    private volatile Thread writerThread;
    private volatile boolean writerStop;
    private volatile boolean writerParked;
    private volatile boolean draining;
    private volatile boolean forced;
    private volatile boolean broken;
    private volatile boolean finished;
    private volatile boolean negotiated;
    /** Set once the reader has left: buffers of requests still with the device are given back by their completion. */
    private volatile boolean tornDown;

    // Progress marks for the watchdog (written with release stores by their owner, read by the watchdog).
    private static final VarHandle READ_MARK;
    private static final VarHandle READ_PHASE;
    private static final VarHandle WRITE_MARK;
    private static final VarHandle REQUESTS_RECEIVED;
    private static final VarHandle REPLIES_WRITTEN;
    /** The reader is not in a socket read (decoding, submitting, waiting for slots or the device). */
    private static final int PHASE_BUSY = 0;
    /** The reader waits for the first byte of a request (the idle timeout may apply). */
    private static final int PHASE_AWAITING_REQUEST = 1;
    /** The reader waits for the rest of a started request, header or payload (the read-stall timeout applies). */
    private static final int PHASE_IN_REQUEST = 2;
    /** Largest write call: the write-stall timeout sees progress at least every this many bytes. */
    static final int WRITE_SLICE = 1 << 20;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            READ_MARK = lookup.findVarHandle(NbdConnection.class, "readMark", long.class);
            READ_PHASE = lookup.findVarHandle(NbdConnection.class, "readPhase", int.class);
            WRITE_MARK = lookup.findVarHandle(NbdConnection.class, "writeMark", long.class);
            REQUESTS_RECEIVED = lookup.findVarHandle(NbdConnection.class, "requestsReceived", long.class);
            REPLIES_WRITTEN = lookup.findVarHandle(NbdConnection.class, "repliesWritten", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** Bumped by the reader at every phase change and every socket read that returned. */
    @SuppressWarnings("unused") private long readMark;
    @SuppressWarnings("unused") private int readPhase;
    /** Odd while a write call to the socket runs; bumped before and after each (under the write lock). */
    @SuppressWarnings("unused") private long writeMark;
    /** Requests decoded (reader) and replies written (under the write lock): equal when nothing is outstanding. */
    @SuppressWarnings("unused") private long requestsReceived;
    @SuppressWarnings("unused") private long repliesWritten;
    private long readMarkOwn;
    private long requestsOwn;

    // Watchdog-owned.
    private final long acceptedAt = System.nanoTime();
    private long seenReadMark = -1;
    private long readSince;
    private long seenWriteMark = -1;
    private long writeSince;

    NbdConnection(long id, NbdServer server, SocketChannel channel, NbdServerOptions options, String peer) {
        this.id = id;
        this.server = server;
        this.channel = channel;
        this.in = channel;
        this.out = channel;
        this.options = options;
        this.peer = peer;
        this.readerThread = new Thread(this, "weft-nbd-" + id + "-reader");
        this.readerThread.setDaemon(true);
    }

    void start() {
        readerThread.start();
    }

    NbdExport export() {
        return export;
    }

    Thread readerThread() {
        return readerThread;
    }

    boolean finished() {
        return finished;
    }

    /**
     * Stops reading new requests; requests already submitted complete and are answered, then the connection
     * closes. Safe from any thread.
     */
    void beginDrain() {
        draining = true;
        try {
            channel.shutdownInput(); // wakes the reader's blocking read with end-of-stream
        } catch (IOException e) {
            // Already closed: the reader is on its way out anyway.
        }
    }

    /**
     * The watchdog's look at this connection ({@link NbdServer}'s watchdog thread only): closes it when the
     * handshake took too long, or when a mark stood still for a timeout: the reader in the middle of a request
     * (read stall), a write call to the socket (write stall), or the reader waiting for a request with nothing
     * outstanding (idle). Closing goes through {@link #forceClose}, so requests in flight are cancelled and their
     * buffers stay theirs until their completions ran.
     */
    void checkProgress(long now) {
        if (finished || forced) {
            return;
        }
        if (!negotiated) {
            long limit = options.handshakeTimeout().toNanos();
            if (limit > 0 && now - acceptedAt >= limit) {
                LOG.info("{} closed: no export negotiated within {} (weft.nbd.handshake-timeout)", this,
                        options.handshakeTimeout());
                forceClose();
            }
            return;
        }
        long readMark = (long) READ_MARK.getAcquire(this);
        if (readMark != seenReadMark) {
            seenReadMark = readMark;
            readSince = now;
        } else {
            int phase = (int) READ_PHASE.getAcquire(this);
            long stall = options.readStallTimeout().toNanos();
            long idle = options.idleTimeout().toNanos();
            if (phase == PHASE_IN_REQUEST && stall > 0 && now - readSince >= stall) {
                LOG.info("{} closed: a request stopped arriving, nothing of it for {} (weft.nbd.read-stall-timeout)",
                        this, options.readStallTimeout());
                forceClose();
                return;
            }
            if (phase == PHASE_AWAITING_REQUEST && idle > 0 && now - readSince >= idle
                    && (long) REQUESTS_RECEIVED.getAcquire(this) == (long) REPLIES_WRITTEN.getAcquire(this)
                    && ((long) WRITE_MARK.getAcquire(this) & 1) == 0) {
                LOG.info("{} closed: idle for {} (weft.nbd.idle-timeout)", this, options.idleTimeout());
                forceClose();
                return;
            }
        }
        long writeMark = (long) WRITE_MARK.getAcquire(this);
        if (writeMark != seenWriteMark) {
            seenWriteMark = writeMark;
            writeSince = now;
        } else {
            long stall = options.writeStallTimeout().toNanos();
            if ((writeMark & 1) != 0 && stall > 0 && now - writeSince >= stall) {
                LOG.info("{} closed: the client accepted no reply bytes for {} (weft.nbd.write-stall-timeout)",
                        this, options.writeStallTimeout());
                forceClose();
            }
        }
    }

    /** Reader: records a phase change or a socket read for the watchdog (a release store; no clock). */
    private void readProgress(int phase) {
        READ_PHASE.setRelease(this, phase);
        READ_MARK.setRelease(this, ++readMarkOwn);
    }

    /** Closes the socket now; replies not yet written are lost. Safe from any thread. */
    void forceClose() {
        forced = true;
        draining = true;
        closeChannel();
        LockSupport.unpark(readerThread);
        Thread w = writerThread;
        if (w != null) {
            LockSupport.unpark(w);
        }
    }

    @Override
    public void run() {
        boolean graceful = false;
        try {
            NbdHandshake handshake = new NbdHandshake(channel, server);
            NbdHandshake.Result negotiated = handshake.negotiate();
            if (negotiated == null) {
                return;
            }
            if (handshake.tls() != null) {
                tls = handshake.tls();
                in = tls;
                out = tls;
            }
            this.negotiated = true;
            setUp(negotiated);
            LOG.debug("nbd connection {} from {} serving export '{}' (structured={}, flags=0x{}, tls={})", id, peer,
                    negotiated.export().name(), structured, Integer.toHexString(transmissionFlags), tls != null);
            transmission();
            graceful = true;
        } catch (NbdHandshake.ProtocolViolation e) {
            LOG.info("nbd connection {} from {} closed: protocol violation: {}", id, peer, e.getMessage());
        } catch (IOException e) {
            if (!forced && !draining) {
                LOG.debug("nbd connection {} from {} ended: {}", id, peer, e.toString());
            }
        } catch (RuntimeException | Error e) {
            LOG.error("nbd connection {} from {} failed", id, peer, e);
        } finally {
            try {
                if (graceful) {
                    awaitInFlight();
                }
            } catch (IOException e) {
                LOG.debug("nbd connection {}: replies after end of input not delivered: {}", id, e.toString());
            } finally {
                cancelInFlight();
                stopWriter();
                if (graceful && tls != null && !forced && !broken) {
                    tls.closeOutbound(); // close_notify, so the client sees a clean end rather than a truncation
                }
                closeChannel();
                returnBuffersAtEnd();
                finished = true;
                server.connectionFinished(this);
            }
        }
    }

    /**
     * The connection gives up on whatever is still in flight (forced close, broken socket, error): each live part is
     * cancelled below, so the device completes it soon instead of at its own timeout. Nothing here waits for those
     * completions, and nothing needs to: the slots and their buffers are never reused once the reader has left
     * (they belong to this connection alone, and no pool takes them back), so a buffer stays the device's for as
     * long as the device holds the request, and is freed by the garbage collector only after that.
     */
    private void cancelInFlight() {
        Slot[] all = slots;
        BlockDevice d = device;
        if (all == null || d == null) {
            return;
        }
        for (Slot s : all) {
            if (!s.isSubmitted()) {
                continue;
            }
            int live = s.liveParts() & ~Slot.GUARD_BIT;
            for (int part = 0; live != 0; part++, live >>>= 1) {
                if ((live & 1) != 0) {
                    try {
                        if (s.lending) {
                            lender.cancelLend(s.tag(part), this);
                        } else {
                            d.cancel(s.tag(part), this);
                        }
                    } catch (RuntimeException e) {
                        LOG.warn("nbd connection {}: cancel threw", id, e);
                    }
                }
            }
        }
    }

    /**
     * Gives the buffer budget back once the reader has left: now for every buffer no device holds, and for a request
     * still with the device (cancelled by {@link #cancelInFlight}) when its completion runs ({@link #onComplete}).
     * Both sides look at the other's store (tornDown, the slot's state) and {@link Slot#takeBudget} makes sure only
     * one of them gives the bytes back.
     */
    private void returnBuffersAtEnd() {
        tornDown = true;
        VarHandle.fullFence();
        Slot[] all = slots;
        if (all == null) {
            return;
        }
        for (Slot s : all) {
            if (!s.isSubmitted()) {
                returnBudget(s);
            }
            endLoan(s); // a reply that will never be written (the slot's completion ends a later loan itself)
        }
    }

    /**
     * Gives a slot's loan back to the device, if it holds one not given back yet (any owner of the slot, or the
     * teardown; {@link Slot#takeLoan} picks exactly one).
     */
    private void endLoan(Slot s) {
        if (s.takeLoan()) {
            long loan = s.loan;
            s.loanBase = null;
            releaseLoan(loan);
        }
    }

    private void releaseLoan(long loan) {
        try {
            lender.releaseLoan(loan);
        } catch (RuntimeException e) {
            LOG.warn("nbd connection {}: releasing a lent READ threw", id, e);
        }
    }

    private void returnBudget(Slot s) {
        long bytes = s.takeBudget();
        if (bytes != 0) {
            server.returnBuffer(bytes);
        }
    }

    private void setUp(NbdHandshake.Result negotiated) {
        export = negotiated.export();
        device = negotiated.export().device();
        structured = negotiated.structuredReplies();
        baseAllocation = negotiated.baseAllocation();
        transmissionFlags = negotiated.transmissionFlags();
        maxPayload = negotiated.maxPayload();
        defaultBlockSizes = !negotiated.blockSizeAgreed();
        lender = tls == null && device instanceof ReadLending ? (ReadLending) device : null;
        int n = options.maxInFlightPerConnection();
        slots = new Slot[n];
        freeStack = new int[n];
        for (int i = 0; i < n; i++) {
            slots[i] = new Slot(i);
            freeStack[i] = n - 1 - i;
        }
        freeCount = n;
        inlineReady = new Slot[n];
        readerGather = new ByteBuffer[2 * n];
        asyncCompleted = new ManyToOneConcurrentArrayQueue<>(n);
        returned = new SlotHandback<>(n, readerThread);
        receive = ByteBuffer.allocateDirect(options.receiveBufferSize());
        receive.flip(); // read mode, empty
        // removeExport() or close() may have scanned the connections before this one recorded its export: check
        // again now that it is recorded (one side or the other sees the change).
        if (server.isClosing() || !server.isServed(export)) {
            draining = true;
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Reader: decode and submit
    // ---------------------------------------------------------------------------------------------------------

    private void transmission() throws IOException {
        while (!draining) {
            if (receive.remaining() < NbdRequestHeader.LENGTH) {
                flushInline();
                reclaimReturned();
                if (inFlight > 0) {
                    // Nothing more to submit: let a device whose completions can run here deliver them on this
                    // thread (replies written inline) before the read blocks, instead of a completion thread.
                    device.awaitCompletions(AWAIT_COMPLETIONS_NANOS);
                    flushInline();
                    reclaimReturned();
                }
                if (!receive.hasRemaining() && !server.mayKeepIdleBuffers()) {
                    dropIdleBuffers(); // about to wait for the client: leave the budget to busy connections
                }
                if (!fill()) {
                    break;
                }
                continue;
            }
            processRequest();
            if (inlineReadyBytes >= FLUSH_THRESHOLD) {
                flushInline();
            }
        }
        flushInline();
    }

    /** Reads whatever the socket has (blocking for at least one byte). @return false at end of stream */
    private boolean fill() throws IOException {
        receive.compact();
        readProgress(receive.position() == 0 ? PHASE_AWAITING_REQUEST : PHASE_IN_REQUEST);
        int n = in.read(receive);
        readProgress(PHASE_BUSY);
        receive.flip();
        return n >= 0;
    }

    private void processRequest() throws IOException {
        int at = receive.position();
        NbdRequestHeader h = request.wrap(receive, at);
        if (h.magic() != NbdProtocol.REQUEST_MAGIC) {
            throw new NbdHandshake.ProtocolViolation("bad request magic 0x" + Integer.toHexString(h.magic()));
        }
        int type = h.type();
        int flags = h.flags();
        long handle = h.handle();
        long offset = h.offset();
        long length = h.length();
        receive.position(at + NbdRequestHeader.LENGTH);

        if (type == NbdProtocol.CMD_DISC) {
            draining = true; // answer everything in flight, then close
            return;
        }
        REQUESTS_RECEIVED.setRelease(this, ++requestsOwn);
        Slot s = acquireSlot();
        s.handle = handle;
        s.command = type;
        s.offset = offset;
        s.length = (int) length; // meaningful for READ only (at most maxPayload); the others keep the long
        s.dataStart = 0;
        s.fastZero = false;
        s.lending = false;
        DeviceInfo info = device.info();
        int lbs = info.logicalBlockSize();
        // Unaligned requests are ours to make aligned only for a client that did not agree to the constraints.
        boolean unaligned = defaultBlockSizes && ((offset | length) & (lbs - 1)) != 0;
        switch (type) {
            case NbdProtocol.CMD_READ: {
                int status = validate(info, IoOp.READ, flags,
                        NbdProtocol.CMD_FLAG_FUA | (structured ? NbdProtocol.CMD_FLAG_DF : 0), offset, length);
                if (status != IoStatus.OK) {
                    completeLocally(s, status);
                    return;
                }
                if (unaligned) {
                    // Read the covering blocks into the slot's buffer; the reply is sent from the client's offset.
                    long start = offset & -lbs;
                    long cover = alignUp(offset + length, lbs) - start;
                    if (!ensureCapacity(s, (int) cover)) {
                        completeLocally(s, IoStatus.ENOMEM);
                        return;
                    }
                    s.dataStart = (int) (offset - start);
                    submitParts(s, IoOp.READ, start, cover, maxIoParts(info), 0, s.data);
                    return;
                }
                if (lender != null && submitLending(s, offset, (int) length)) {
                    return; // answered from the device's own bytes: no request buffer
                }
                if (!ensureCapacity(s, (int) length)) {
                    completeLocally(s, IoStatus.ENOMEM);
                    return;
                }
                ByteBuffer data = s.data;
                data.clear().limit((int) length);
                submit(s, IoOp.READ, offset, (int) length, 0, data);
                return;
            }
            case NbdProtocol.CMD_WRITE: {
                int status = validate(info, IoOp.WRITE, flags, NbdProtocol.CMD_FLAG_FUA, offset, length);
                if (status != IoStatus.OK) {
                    // The payload still follows the header: consume it without keeping it.
                    if (!skipPayload(length)) {
                        release(s);
                        draining = true;
                        return;
                    }
                    completeLocally(s, status);
                    return;
                }
                int at0 = unaligned ? (int) (offset & (lbs - 1)) : 0;
                if (!ensureCapacity(s, unaligned ? (int) (alignUp(offset + length, lbs) - (offset - at0))
                        : (int) length)) {
                    if (!skipPayload(length)) {
                        release(s);
                        draining = true;
                        return;
                    }
                    completeLocally(s, IoStatus.ENOMEM);
                    return;
                }
                if (!readPayload(s, at0, (int) length)) {
                    release(s); // the client vanished mid-payload: nothing reaches the device
                    draining = true;
                    return;
                }
                if (unaligned) {
                    completeLocally(s, unalignedWrite(s, info, offset, (int) length, ioFlags(flags)));
                    return;
                }
                submit(s, IoOp.WRITE, offset, (int) length, ioFlags(flags), s.data);
                return;
            }
            case NbdProtocol.CMD_FLUSH: {
                int status = (flags & ~NbdProtocol.CMD_FLAG_FUA) != 0 || offset != 0 || length != 0
                        ? IoStatus.EINVAL : IoRequests.check(info, IoOp.FLUSH, 0, 0, 0);
                if (status != IoStatus.OK) {
                    completeLocally(s, status);
                    return;
                }
                submit(s, IoOp.FLUSH, 0, 0, 0, null);
                return;
            }
            case NbdProtocol.CMD_TRIM: {
                int status = (transmissionFlags & NbdProtocol.TFLAG_SEND_TRIM) == 0 && !info.readOnly()
                        ? IoStatus.EINVAL
                        : validate(info, IoOp.DISCARD, flags, NbdProtocol.CMD_FLAG_FUA, offset, length);
                if (status != IoStatus.OK) {
                    completeLocally(s, status);
                    return;
                }
                // A TRIM may leave data as it was, so an unaligned one trims the whole blocks inside it only.
                long start = unaligned ? alignUp(offset, lbs) : offset;
                long end = unaligned ? (offset + length) & -lbs : offset + length;
                if (end <= start) {
                    completeLocally(s, IoStatus.OK);
                    return;
                }
                submitParts(s, IoOp.DISCARD, start, end - start, ZEROING_PART, ioFlags(flags), null);
                return;
            }
            case NbdProtocol.CMD_WRITE_ZEROES: {
                int allowed = NbdProtocol.CMD_FLAG_FUA | NbdProtocol.CMD_FLAG_NO_HOLE
                        | ((transmissionFlags & NbdProtocol.TFLAG_SEND_FAST_ZERO) != 0
                        ? NbdProtocol.CMD_FLAG_FAST_ZERO : 0);
                int status = (transmissionFlags & NbdProtocol.TFLAG_SEND_WRITE_ZEROES) == 0 && !info.readOnly()
                        ? IoStatus.EINVAL
                        : validate(info, IoOp.WRITE_ZEROES, flags, allowed, offset, length);
                s.fastZero = (flags & NbdProtocol.CMD_FLAG_FAST_ZERO) != 0;
                if (status == IoStatus.OK && unaligned && s.fastZero) {
                    status = IoStatus.ENOTSUP; // a read-modify-write is never fast
                }
                if (status != IoStatus.OK) {
                    completeLocally(s, status);
                    return;
                }
                if (unaligned) {
                    completeLocally(s, unalignedWriteZeroes(s, info, offset, length, ioFlags(flags)));
                    return;
                }
                submitParts(s, IoOp.WRITE_ZEROES, offset, length, ZEROING_PART, ioFlags(flags), null);
                return;
            }
            case NbdProtocol.CMD_CACHE: {
                // A page-cache hint: checked like a READ but it carries no payload, so no payload limit; the
                // device needs no call.
                int status = (flags & ~NbdProtocol.CMD_FLAG_FUA) != 0 ? IoStatus.EINVAL : checkRange(info, offset,
                        length);
                completeLocally(s, status);
                return;
            }
            case NbdProtocol.CMD_BLOCK_STATUS:
                blockStatus(s, info, flags, offset, length);
                return;
            default:
                // Unknown command: the protocol says EINVAL; we cannot know of a payload, so assume none.
                completeLocally(s, IoStatus.EINVAL);
        }
    }

    /**
     * NBD-level checks, then {@link IoRequests#check}, with the error values the NBD document asks for. For a client
     * on the default block sizes the alignment is ours to handle, so only the range is checked against the block
     * size: the covering blocks are checked instead of the request.
     */
    private int validate(DeviceInfo info, IoOp op, int flags, int allowedFlags, long offset, long length) {
        if ((flags & ~allowedFlags) != 0) {
            return IoStatus.EINVAL;
        }
        if ((op == IoOp.READ || op == IoOp.WRITE) && length > maxPayload) {
            return IoStatus.EINVAL;
        }
        int lbs = info.logicalBlockSize();
        int status;
        if (defaultBlockSizes && ((offset | length) & (lbs - 1)) != 0) {
            // Range first (without adding: offset + length may overflow for hostile input), then everything else on
            // one covering block, which is aligned and, the range being inside the device, inside it too.
            status = offset < 0 || length <= 0 ? IoStatus.EINVAL
                    : offset > info.size() || length > info.size() - offset ? IoStatus.EOVERFLOW
                    : IoRequests.check(info, op, offset & -lbs, lbs, ioFlags(flags));
        } else {
            status = IoRequests.check(info, op, offset, length, ioFlags(flags));
        }
        if (status == IoStatus.EOVERFLOW) {
            // Beyond the end: ENOSPC for writes, EINVAL for the rest (NBD does not use EOVERFLOW here).
            return op == IoOp.WRITE || op == IoOp.WRITE_ZEROES ? IoStatus.ENOSPC : IoStatus.EINVAL;
        }
        return status;
    }

    /** Range and (unless on default block sizes) alignment of a request without payload: CACHE. */
    private int checkRange(DeviceInfo info, long offset, long length) {
        if (offset < 0 || length == 0 || offset > info.size() || length > info.size() - offset) {
            return IoStatus.EINVAL;
        }
        return !defaultBlockSizes && ((offset | length) & (info.logicalBlockSize() - 1)) != 0
                ? IoStatus.EINVAL : IoStatus.OK;
    }

    private static long alignUp(long value, int blockSize) {
        return (value + blockSize - 1) & -blockSize;
    }

    /** Largest READ/WRITE part the device takes, whole blocks. */
    private static int maxIoParts(DeviceInfo info) {
        int max = info.maxIoSize();
        return max - max % info.logicalBlockSize();
    }

    private static int ioFlags(int nbdFlags) {
        int f = 0;
        if ((nbdFlags & NbdProtocol.CMD_FLAG_FUA) != 0) {
            f |= IoFlags.FUA;
        }
        if ((nbdFlags & NbdProtocol.CMD_FLAG_NO_HOLE) != 0) {
            f |= IoFlags.NO_HOLE;
        }
        if ((nbdFlags & NbdProtocol.CMD_FLAG_FAST_ZERO) != 0) {
            f |= IoFlags.FAST_ZERO;
        }
        return f;
    }

    private void blockStatus(Slot s, DeviceInfo info, int flags, long offset, long length) throws IOException {
        int lbs = info.logicalBlockSize();
        // On the default block sizes descriptors may be cut anywhere (minimum block size 1).
        int granule = defaultBlockSizes ? 1 : lbs;
        if (!baseAllocation || (flags & ~(NbdProtocol.CMD_FLAG_FUA | NbdProtocol.CMD_FLAG_REQ_ONE)) != 0
                || length == 0 || offset < 0 || offset > info.size() || length > info.size() - offset
                || ((offset | length) & (granule - 1)) != 0) {
            completeLocally(s, IoStatus.EINVAL);
            return;
        }
        if (!ensureCapacity(s, MAX_EXTENTS * 8)) {
            completeLocally(s, IoStatus.ENOMEM);
            return;
        }
        boolean one = (flags & NbdProtocol.CMD_FLAG_REQ_ONE) != 0;
        s.data.clear(); // a reused buffer still has the limit of its last request
        extents.begin(s.data, offset, length, granule, one ? 1 : MAX_EXTENTS);
        try {
            device.describeExtents(offset, length, extents);
        } catch (RuntimeException e) {
            LOG.warn("nbd connection {}: describeExtents failed", id, e);
            completeLocally(s, IoStatus.EIO);
            return;
        }
        s.extentBytes = extents.finish() * 8;
        completeLocally(s, IoStatus.OK);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Submitting: one request, or parts
    // ---------------------------------------------------------------------------------------------------------

    private void submit(Slot s, IoOp op, long offset, int length, int flags, ByteBuffer buffer) {
        s.begin(1);
        submitPart(s, 0, op, offset, length, flags, buffer);
    }

    /**
     * Submits {@code [offset, offset + length)} as parts of at most {@code partSize} bytes (a multiple of the block
     * size, so every part stays aligned) and completes the request once, when the last part completed, with the
     * first error a part reported. While parts are being submitted the reader holds a guard part of its own, so an
     * early part that completes at once cannot complete the request while later parts are still to go; the guard is
     * released last. {@code buffer} (READ only) holds the whole range from index 0; each part gets its own view.
     */
    private void submitParts(Slot s, IoOp op, long offset, long length, int partSize, int flags, ByteBuffer buffer) {
        if (length <= partSize) {
            if (buffer != null) {
                buffer.clear().limit((int) length);
            }
            submit(s, op, offset, (int) length, flags, buffer);
            return;
        }
        int parts = (int) ((length + partSize - 1) / partSize);
        if (parts > Slot.MAX_PARTS) {
            completeLocally(s, IoStatus.EINVAL); // cannot happen for a request length of 32 bits; never a hang
            return;
        }
        s.begin(((1 << parts) - 1) | Slot.GUARD_BIT);
        for (int k = 0; k < parts; k++) {
            long at = (long) k * partSize;
            int n = (int) Math.min(partSize, length - at);
            submitPart(s, k, op, offset + at, n, flags, buffer == null ? null : s.view(k, (int) at, n));
        }
        onComplete(s.tag(Slot.GUARD_PART), IoStatus.OK);
    }

    private void submitPart(Slot s, int part, IoOp op, long offset, int length, int flags, ByteBuffer buffer) {
        try {
            device.submit(op, offset, length, flags, buffer, s.tag(part), this);
        } catch (RuntimeException e) {
            // The contract says submit never throws; if it does, the request fails rather than hangs.
            LOG.warn("nbd connection {}: device submit threw", id, e);
            onComplete(s.tag(part), IoStatus.EIO);
        }
    }

    /**
     * Submits an aligned READ as a lending READ. @return false if the device does not lend this one (nothing was
     * submitted; the caller copies as usual)
     */
    private boolean submitLending(Slot s, long offset, int length) {
        s.lending = true;
        s.begin(1);
        try {
            if (lender.trySubmitLend(offset, length, 0, s.tag(0), this)) {
                return true;
            }
        } catch (RuntimeException e) {
            // The contract says it never throws; if it does, the request fails rather than hangs.
            LOG.warn("nbd connection {}: device lending submit threw", id, e);
            onLent(s.tag(0), IoStatus.EIO, null, 0, 0L);
            return true;
        }
        s.lending = false;
        return false;
    }

    /** Completes a request the server answers itself (validation errors, CACHE, BLOCK_STATUS, read-modify-write). */
    private void completeLocally(Slot s, int status) {
        s.begin(1);
        onComplete(s.tag(0), status);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Read-modify-write for clients on the default block sizes (minimum block size 1)
    // ---------------------------------------------------------------------------------------------------------

    /**
     * An unaligned WRITE: the payload is at {@code s.data[offset % lbs, + length)}; the head and tail of the
     * covering blocks are read from the device, then the covering blocks are written.
     *
     * <p>Serialisation: this runs on the reader, and only once every other request of this connection has completed
     * ({@link #awaitOthers}); nothing else is submitted until its write completed. So no write of this connection
     * overlaps it, in either direction, and two overlapping unaligned writes never lose each other's bytes. Across
     * connections there is no such guarantee (docs/nbd.md).
     */
    private int unalignedWrite(Slot s, DeviceInfo info, long offset, int length, int flags) throws IOException {
        int lbs = info.logicalBlockSize();
        long start = offset & -lbs;
        long end = offset + length;
        long coverEnd = alignUp(end, lbs);
        awaitOthers();
        ByteBuffer data = s.data.clear(); // absolute puts below check against the limit, not the capacity
        ByteBuffer block = bounce(lbs);
        int status = IoStatus.OK;
        boolean headRead = false;
        if (offset != start) {
            status = syncIo(IoOp.READ, start, lbs, 0, block.clear().limit(lbs));
            headRead = true;
            data.put(0, block, 0, (int) (offset - start));
        }
        long tail = coverEnd - lbs;
        if (status == IoStatus.OK && end != coverEnd) {
            if (!headRead || tail != start) {
                status = syncIo(IoOp.READ, tail, lbs, 0, block.clear().limit(lbs));
            }
            data.put((int) (end - start), block, (int) (end - tail), (int) (coverEnd - end));
        }
        if (status != IoStatus.OK) {
            return status;
        }
        return syncWrite(s.data, start, (int) (coverEnd - start), flags, maxIoParts(info));
    }

    /**
     * An unaligned WRITE_ZEROES: the partial blocks at either end by read-modify-write, the whole blocks between by
     * WRITE_ZEROES. Serialised like {@link #unalignedWrite}.
     */
    private int unalignedWriteZeroes(Slot s, DeviceInfo info, long offset, long length, int flags)
            throws IOException {
        int lbs = info.logicalBlockSize();
        long end = offset + length;
        long innerStart = alignUp(offset, lbs);
        long innerEnd = end & -lbs;
        awaitOthers();
        int writeFlags = flags & IoFlags.FUA;
        int status = IoStatus.OK;
        long head = offset & -lbs;
        if (offset != head) {
            status = zeroInBlock(head, lbs, offset - head, Math.min(end, head + lbs) - head, writeFlags);
        }
        long tail = (end - 1) & -lbs;
        if (status == IoStatus.OK && end != innerEnd && !(offset != head && tail == head)) {
            status = zeroInBlock(tail, lbs, 0, end - tail, writeFlags);
        }
        for (long at = innerStart; status == IoStatus.OK && at < innerEnd; at += ZEROING_PART) {
            status = syncIo(IoOp.WRITE_ZEROES, at, (int) Math.min(ZEROING_PART, innerEnd - at), flags, null);
        }
        return status;
    }

    /** Reads one block, zeroes {@code [from, to)} of it, writes it back. */
    private int zeroInBlock(long block, int lbs, long from, long to, int flags) throws IOException {
        ByteBuffer b = bounce(lbs);
        int status = syncIo(IoOp.READ, block, lbs, 0, b.clear().limit(lbs));
        if (status != IoStatus.OK) {
            return status;
        }
        for (int i = (int) from; i < to; i++) {
            b.put(i, (byte) 0);
        }
        return syncIo(IoOp.WRITE, block, lbs, flags, b.clear().limit(lbs));
    }

    /** Writes {@code buffer[0, length)} to {@code offset} in parts the device takes, one after the other. */
    private int syncWrite(ByteBuffer buffer, long offset, int length, int flags, int partSize) throws IOException {
        for (int at = 0; at < length; at += partSize) {
            int n = Math.min(partSize, length - at);
            buffer.clear().limit(at + n).position(at);
            int status = syncIo(IoOp.WRITE, offset + at, n, flags, buffer);
            if (status != IoStatus.OK) {
                return status;
            }
        }
        return IoStatus.OK;
    }

    /** The connection's edge-block buffer (read-modify-write only), grown to {@code lbs}. */
    private ByteBuffer bounce(int lbs) {
        if (bounce == null || bounce.capacity() < lbs) {
            bounce = ByteBuffer.allocateDirect(lbs);
        }
        return bounce;
    }

    /**
     * Submits one request of the reader's own and waits for its completion, delivering (and replying to) other
     * requests' inline completions meanwhile. A forced close does not abandon it: the request is cancelled and
     * still waited for, since its buffer (the slot's, or the bounce buffer) is the device's until the completion.
     */
    private int syncIo(IoOp op, long offset, int length, int flags, ByteBuffer buffer) {
        SyncCompletion c = sync;
        long tag = c.arm();
        try {
            device.submit(op, offset, length, flags, buffer, tag, c);
        } catch (RuntimeException e) {
            LOG.warn("nbd connection {}: device submit threw", id, e);
            return IoStatus.EIO;
        }
        boolean cancelled = false;
        while (!c.done()) {
            device.awaitCompletions(AWAIT_COMPLETIONS_NANOS);
            if (c.done()) {
                break;
            }
            if (forced && !cancelled) {
                cancelled = true;
                device.cancel(tag, c);
                continue;
            }
            // The completion unparks us; the bound only lets a device that delivers in awaitCompletions progress.
            LockSupport.parkNanos(this, AWAIT_COMPLETIONS_NANOS);
        }
        return c.status();
    }

    /** Waits until this request is the connection's only one in flight (every other one answered). */
    private void awaitOthers() throws IOException {
        while (true) {
            flushInline();
            reclaimReturned();
            if (inFlight <= 1) {
                return;
            }
            device.awaitCompletions(AWAIT_COMPLETIONS_NANOS);
            flushInline();
            reclaimReturned();
            if (inFlight <= 1) {
                return;
            }
            awaitReturned();
        }
    }

    /** The completion of the reader's own synchronous requests; a tag per request so a stale one is ignored. */
    private final class SyncCompletion implements IoCompletion {
        /** Written by the reader only; volatile because a late completion of an earlier request reads it. */
        private volatile long tag;
        private volatile long doneTag = -1;
        private volatile int status;

        long arm() {
            long t = tag + 1;
            tag = t;
            return t;
        }

        boolean done() {
            return doneTag == tag;
        }

        int status() {
            return status;
        }

        @Override
        public void onComplete(long tag, int status) {
            if (tag != this.tag) { // an earlier request's late completion: its wait is over
                return;
            }
            this.status = status;
            doneTag = tag;
            LockSupport.unpark(readerThread);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Completions
    // ---------------------------------------------------------------------------------------------------------

    @Override
    public void onComplete(long tag, int status) {
        Slot s = completedBy(tag, status);
        if (s != null) {
            deliver(s);
        }
    }

    @Override
    public void onLent(long tag, int status, ByteBuffer base, int at, long loan) {
        Slot s = completedBy(tag, status);
        if (s == null) {
            if (status == IoStatus.OK) {
                releaseLoan(loan); // stale or second completion: nobody will read these bytes
            }
            return;
        }
        if (s.status == IoStatus.OK) {
            if (base == null || at < 0 || at > base.capacity() - s.length) {
                // A lent range outside its buffer (a device bug): never gather from it; the READ fails instead.
                LOG.warn("nbd connection {}: device lent [{}, +{}) of a buffer of {} bytes: answered EIO", id, at,
                        s.length, base == null ? 0 : base.capacity());
                releaseLoan(loan);
                s.status = IoStatus.EIO;
            } else {
                s.holdLoan(base, at, loan);
            }
        }
        deliver(s);
    }

    /** The slot this completion completed (it is then the caller's to hand on), or null. */
    private Slot completedBy(long tag, int status) {
        int index = (int) tag & 0xffff;
        int part = ((int) tag >>> 16) & 0xffff;
        Slot[] all = slots;
        if (index >= all.length || part > Slot.GUARD_PART) {
            return null; // not ours: a misbehaving device must not corrupt another request
        }
        Slot s = all[index];
        if (s.generation != (int) (tag >>> 32) || !s.partDone(part, status) || !s.complete()) {
            return null; // stale or second completion, or other parts still live
        }
        s.status = s.firstError();
        return s;
    }

    private void deliver(Slot s) {
        if (tornDown) {
            returnBudget(s); // the connection is gone: nobody reads this buffer again
            endLoan(s);
            return;
        }
        if (Thread.currentThread() == readerThread) {
            inlineReady[inlineReadyCount++] = s;
            inlineReadyBytes += replyBytes(s);
        } else {
            asyncCompleted.offer(s);
            wakeWriter();
        }
    }

    private int replyBytes(Slot s) {
        return s.status == IoStatus.OK && s.command == NbdProtocol.CMD_READ ? s.length + 32 : 32;
    }

    /**
     * Encodes the reply of a completed slot into its header buffer and adds header (and data) to {@code gather}.
     * @return the number of buffers added
     */
    private int encodeReply(Slot s, ByteBuffer[] gather, int at) {
        ByteBuffer h = s.header;
        h.clear();
        int n;
        if (s.status == IoStatus.OK) {
            if (s.command == NbdProtocol.CMD_READ) {
                n = structured ? NbdReplyEncoder.offsetDataHeader(h, 0, s.handle, s.offset, s.length)
                        : NbdReplyEncoder.simpleReply(h, 0, 0, s.handle);
                h.limit(n);
                gather[at] = h;
                if (s.loanBase != null) {
                    gather[at + 1] = s.lentData();
                } else {
                    s.data.limit(s.dataStart + s.length).position(s.dataStart); // the device may have moved them
                    gather[at + 1] = s.data;
                }
                return 2;
            }
            if (s.command == NbdProtocol.CMD_BLOCK_STATUS) {
                n = NbdReplyEncoder.chunkHeader(h, 0, NbdProtocol.REPLY_FLAG_DONE,
                        NbdProtocol.REPLY_TYPE_BLOCK_STATUS, s.handle, 4 + s.extentBytes);
                h.putInt(n, NbdProtocol.BASE_ALLOCATION_ID);
                h.limit(n + 4);
                s.data.limit(s.extentBytes).position(0);
                gather[at] = h;
                gather[at + 1] = s.data;
                return 2;
            }
            n = NbdReplyEncoder.simpleReply(h, 0, 0, s.handle);
        } else {
            int error = NbdErrors.toNbd(s.status, s.fastZero);
            n = structured ? NbdReplyEncoder.errorChunk(h, 0, s.handle, error, NbdErrors.message(error))
                    : NbdReplyEncoder.simpleReply(h, 0, error, s.handle);
        }
        h.limit(n);
        gather[at] = h;
        return 1;
    }

    /** Writes every reply completed inline on the reader, then recycles their slots. */
    private void flushInline() throws IOException {
        int count = inlineReadyCount;
        if (count == 0) {
            return;
        }
        try {
            writeReplies(inlineReady, count, readerGather);
        } finally {
            for (int i = 0; i < count; i++) {
                release(inlineReady[i]);
                inlineReady[i] = null;
            }
            inlineReadyCount = 0;
            inlineReadyBytes = 0;
        }
    }

    /**
     * Encodes the replies of {@code batch[0, count)} and writes them in gathering writes under the write lock (the
     * reader's inline replies and the writer's never interleave). {@code gather} holds two buffers per slot; it is
     * cleared again afterwards, so it keeps no buffer reachable. The slots stay the caller's to recycle.
     */
    private void writeReplies(Slot[] batch, int count, ByteBuffer[] gather) throws IOException {
        int buffers = 0;
        long bytes = 0;
        for (int i = 0; i < count; i++) {
            int added = encodeReply(batch[i], gather, buffers);
            for (int k = 0; k < added; k++) {
                bytes += gather[buffers + k].remaining();
            }
            buffers += added;
        }
        try {
            synchronized (writeLock) {
                writeFully(gather, buffers, bytes);
                REPLIES_WRITTEN.setRelease(this, (long) REPLIES_WRITTEN.get(this) + count);
            }
        } finally {
            for (int i = 0; i < buffers; i++) {
                gather[i] = null;
            }
        }
    }

    /**
     * Writes {@code bytes} from {@code gather[0, count)} (caller holds the write lock). A blocking write returns only
     * when the kernel took everything, so each call takes at most {@link #WRITE_SLICE} bytes: the write-stall
     * timeout then sees progress as long as the client keeps reading, however large the batch.
     */
    private void writeFully(ByteBuffer[] gather, int count, long bytes) throws IOException {
        int first = 0;
        long left = bytes;
        while (left > 0) {
            int end = first;
            long slice = 0;
            while (end < count && slice < WRITE_SLICE) {
                slice += gather[end++].remaining();
            }
            ByteBuffer last = gather[end - 1];
            int limit = last.limit();
            if (slice > WRITE_SLICE) {
                last.limit((int) (limit - (slice - WRITE_SLICE)));
            }
            long mark = (long) WRITE_MARK.get(this);
            WRITE_MARK.setRelease(this, mark + 1); // odd: a write call runs
            long n;
            try {
                n = out.write(gather, first, end - first);
            } finally {
                last.limit(limit);
                WRITE_MARK.setRelease(this, mark + 2);
            }
            left -= n;
            while (first < count && !gather[first].hasRemaining()) {
                first++;
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Slots and buffers (reader-owned)
    // ---------------------------------------------------------------------------------------------------------

    private Slot acquireSlot() throws IOException {
        if (freeCount == 0) {
            reclaimReturned();
            if (freeCount == 0) {
                flushInline();
            }
            while (freeCount == 0) {
                awaitReturned();
            }
        }
        inFlight++;
        return slots[freeStack[--freeCount]];
    }

    private void release(Slot s) {
        endLoan(s);
        s.free();
        if (s.data == null && s.counted != 0) {
            allocatedBytes -= s.counted; // the writer dropped it (see writerLoop)
            s.counted = 0;
        }
        if (s.data != null && (allocatedBytes > options.maxBufferedBytesPerConnection()
                || server.bufferBudgetWanted())) {
            dropBuffer(s);
        }
        freeStack[freeCount++] = s.index;
        inFlight--;
    }

    private void reclaimReturned() {
        Slot s;
        while ((s = returned.poll()) != null) {
            release(s);
        }
    }

    /** Parks the reader until the writer hands slots back (or the connection is torn down). */
    private void awaitReturned() throws IOException {
        returned.awaitAny(torn);
        reclaimReturned();
        if (forced || broken) {
            throw new IOException("connection closed while requests were in flight");
        }
    }

    /** Waits until every submitted request has completed and its reply has been written. */
    private void awaitInFlight() throws IOException {
        flushInline();
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
    private boolean ensureCapacity(Slot s, int length) throws IOException {
        ByteBuffer d = s.data;
        if (d != null && d.capacity() >= length) {
            return true;
        }
        int capacity = Math.max(4096, length);
        // Powers of two (up to the payload limit) get reused by later requests; a length past the payload limit
        // (the covering blocks of an unaligned maximum-size request) is rare and gets exactly what it needs.
        if (capacity < (1 << 30) && length <= maxPayload) {
            capacity = Math.max(length, Math.min(maxPayload, Integer.highestOneBit(capacity - 1) << 1));
        }
        long limit = options.maxBufferedBytesPerConnection();
        long current = d == null ? 0 : d.capacity();
        if (allocatedBytes - current + capacity > limit) {
            dropIdleBuffers();
            // Still over: wait for requests in flight to return their buffers (this slot counts as one).
            while (allocatedBytes - current + capacity > limit && inFlight > 1) {
                flushInline();
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
        if (!server.tryReserveBuffer(capacity) && !awaitBudget(capacity)) {
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
        if (server.tryReserveBuffer(bytes)) {
            return true;
        }
        long limit = options.readStallTimeout().toNanos();
        long deadline = System.nanoTime() + limit;
        server.bufferWaiter(readerThread, true);
        try {
            while (true) {
                flushInline();
                reclaimReturned();
                dropIdleBuffers();
                if (server.tryReserveBuffer(bytes)) {
                    return true;
                }
                if (forced || broken) {
                    throw new IOException("connection closed while waiting for buffer budget");
                }
                long left = limit == 0 ? BUDGET_POLL_NANOS : deadline - System.nanoTime();
                if (left <= 0) {
                    LOG.warn("{}: a request of {} bytes found no buffer memory within {} (weft.nbd.buffer-budget = "
                            + "{} bytes, all in use; waits are bounded by weft.nbd.read-stall-timeout): answered "
                            + "ENOMEM", this, bytes, options.readStallTimeout(), options.bufferBudget());
                    return false;
                }
                // Woken by a connection that gives budget back; the bound picks up this connection's own replies.
                LockSupport.parkNanos(this, Math.min(left, BUDGET_POLL_NANOS));
            }
        } finally {
            server.bufferWaiter(readerThread, false);
        }
    }

    /** Drops a slot's data buffer (reader-owned, not with the device) and gives its bytes back to the budget. */
    private void dropBuffer(Slot s) {
        allocatedBytes -= s.counted;
        s.counted = 0;
        returnBudget(s);
        s.data(null);
    }

    private void dropIdleBuffers() {
        for (int i = 0; i < freeCount; i++) {
            Slot idle = slots[freeStack[i]];
            if (idle.data != null) {
                dropBuffer(idle);
            }
        }
    }

    /** Copies the WRITE payload into the slot at {@code at}: the buffered part, then straight from the socket. */
    private boolean readPayload(Slot s, int at, int length) throws IOException {
        ByteBuffer d = s.data;
        d.clear().limit(at + length).position(at);
        int buffered = Math.min(receive.remaining(), length);
        if (buffered > 0) {
            int limit = receive.limit();
            receive.limit(receive.position() + buffered);
            d.put(receive);
            receive.limit(limit);
        }
        if (d.hasRemaining()) {
            flushInline();
            while (d.hasRemaining()) {
                readProgress(PHASE_IN_REQUEST);
                if (in.read(d) < 0) {
                    return false;
                }
            }
            readProgress(PHASE_BUSY);
        }
        d.position(at);
        return true;
    }

    /** Discards {@code length} payload bytes (a refused WRITE) without buffering more than the receive buffer. */
    private boolean skipPayload(long length) throws IOException {
        int buffered = (int) Math.min(receive.remaining(), length);
        receive.position(receive.position() + buffered);
        long left = length - buffered;
        if (left == 0) {
            return true;
        }
        flushInline();
        while (left > 0) {
            receive.clear().limit((int) Math.min(receive.capacity(), left));
            readProgress(PHASE_IN_REQUEST);
            int n = in.read(receive);
            if (n < 0) {
                receive.clear().flip();
                return false;
            }
            left -= n;
        }
        readProgress(PHASE_BUSY);
        receive.clear().flip();
        return true;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Writer (only for completions that arrive on other threads)
    // ---------------------------------------------------------------------------------------------------------

    private void wakeWriter() {
        Thread w = writerThread;
        if (w == null) {
            w = startWriter();
            if (w == null) {
                return;
            }
        }
        // The same store-then-load protocol as SlotHandback: the offer's tail CAS already orders it, the fence keeps
        // it so whatever the queue's implementation does.
        VarHandle.fullFence();
        if (writerParked) {
            LockSupport.unpark(w);
        }
    }

    private synchronized Thread startWriter() {
        if (writerThread == null && !writerStop) {
            Thread w = new Thread(this::writerLoop, "weft-nbd-" + id + "-writer");
            w.setDaemon(true);
            writerThread = w;
            w.start();
        }
        return writerThread;
    }

    private void writerLoop() {
        int n = options.maxInFlightPerConnection();
        Slot[] batch = new Slot[n];
        ByteBuffer[] gather = new ByteBuffer[2 * n];
        int idle = 0;
        while (true) {
            int count = 0;
            Slot s;
            while (count < n && (s = asyncCompleted.poll()) != null) {
                batch[count++] = s;
            }
            if (count == 0) {
                if (writerStop) {
                    return;
                }
                if (++idle < WRITER_SPINS) {
                    Thread.onSpinWait();
                    continue;
                }
                idle = 0;
                writerParked = true;
                if (asyncCompleted.isEmpty() && !writerStop) {
                    LockSupport.park(this);
                }
                writerParked = false;
                continue;
            }
            idle = 0;
            if (!broken && !forced) {
                try {
                    writeReplies(batch, count, gather);
                } catch (IOException e) {
                    broken = true;
                    LOG.debug("nbd connection {}: writing replies failed: {}", id, e.toString());
                }
            }
            // The reader may be blocked on the socket for a long time before it takes these slots back, so under
            // budget pressure their buffers are given back here (the writer owns a slot until it hands it back).
            boolean drop = !server.mayKeepIdleBuffers();
            for (int i = 0; i < count; i++) {
                if (drop) {
                    dropBufferFromWriter(batch[i]);
                }
                endLoan(batch[i]); // its reply is written (or never will be): the lent bytes go back
                returned.offer(batch[i]);
                batch[i] = null;
            }
            returned.signal(broken);
        }
    }

    private void dropBufferFromWriter(Slot s) {
        long bytes = s.takeBudget();
        if (bytes != 0) {
            s.data(null); // the reader fixes its allocatedBytes when it takes the slot back (release)
            server.returnBuffer(bytes);
        }
    }

    private void stopWriter() {
        Thread w;
        synchronized (this) {
            writerStop = true;
            w = writerThread;
        }
        if (w != null) {
            LockSupport.unpark(w);
            if (w != Thread.currentThread()) {
                try {
                    w.join(1000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }

    private void closeChannel() {
        try {
            channel.close();
        } catch (IOException e) {
            // Nothing left to release.
        }
    }

    @Override
    public String toString() {
        NbdExport e = export;
        return "nbd connection " + id + " from " + peer + (e == null ? "" : " on '" + e.name() + "'");
    }
}
