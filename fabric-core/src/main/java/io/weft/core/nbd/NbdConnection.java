package io.weft.core.nbd;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoFlags;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoRequests;
import io.weft.core.io.IoStatus;
import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.concurrent.locks.LockSupport;
import org.agrona.concurrent.ManyToOneConcurrentArrayQueue;
import org.agrona.concurrent.OneToOneConcurrentArrayQueue;
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
 *   request slots back to the reader through a one-to-one queue. Device threads never block on the socket.</li>
 * </ul>
 * Both write under one lock, so replies never interleave; in the inline case only the reader takes it (uncontended).
 *
 * <p>Requests live in pre-allocated slots (one per in-flight request, {@link NbdServerOptions#maxInFlightPerConnection}),
 * each with a small direct header buffer and a direct data buffer that grows on demand and is kept for reuse within
 * {@link NbdServerOptions#maxBufferedBytesPerConnection}. Nothing is allocated per request in steady state.
 */
final class NbdConnection implements IoCompletion, Runnable {
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

    /** One request from decode to reply. Fields are owned by the reader until submit, then by whoever completes. */
    static final class Slot {
        private static final VarHandle STATE;

        static {
            try {
                STATE = MethodHandles.lookup().findVarHandle(Slot.class, "state", int.class);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        final int index;
        final ByteBuffer header = ByteBuffer.allocateDirect(HEADER_CAPACITY);
        int generation;
        @SuppressWarnings("unused") // accessed through STATE
        private volatile int state;
        ByteBuffer data;
        long handle;
        int command;
        long offset;
        int length;
        boolean fastZero;
        int status;
        /** Bytes of BLOCK_STATUS descriptors in {@link #data}. */
        int extentBytes;

        Slot(int index) {
            this.index = index;
        }

        long tag() {
            return ((long) generation << 32) | index;
        }

        boolean complete() {
            return STATE.compareAndSet(this, SLOT_SUBMITTED, SLOT_COMPLETED);
        }

        void submitted() {
            STATE.setRelease(this, SLOT_SUBMITTED);
        }

        void free() {
            generation++;
            STATE.setRelease(this, SLOT_FREE);
        }
    }

    private final long id;
    private final NbdServer server;
    private final SocketChannel channel;
    private final NbdServerOptions options;
    private final String peer;
    private final Thread readerThread;
    private final Object writeLock = new Object();

    // Negotiated in the handshake.
    private volatile NbdExport export;
    private BlockDevice device;
    /** Longest the reader waits in {@link BlockDevice#awaitCompletions} before it blocks on the socket. */
    private static final long AWAIT_COMPLETIONS_NANOS = 1_000_000;
    private boolean structured;
    private boolean baseAllocation;
    private int transmissionFlags;
    private int maxPayload;

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
    private OneToOneConcurrentArrayQueue<Slot> returned;
    private volatile Thread writerThread;
    private volatile boolean writerStop;
    private volatile boolean writerParked;
    private volatile boolean readerParked;
    private volatile boolean draining;
    private volatile boolean forced;
    private volatile boolean broken;
    private volatile boolean finished;
    private volatile boolean negotiated;

    NbdConnection(long id, NbdServer server, SocketChannel channel, NbdServerOptions options, String peer) {
        this.id = id;
        this.server = server;
        this.channel = channel;
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

    /** Called when the handshake time limit expires: closes the connection unless it has negotiated by now. */
    void handshakeDeadline() {
        if (!negotiated && !finished) {
            LOG.info("{} closed: no export negotiated within {}", this, options.handshakeTimeout());
            forceClose();
        }
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
            NbdHandshake.Result negotiated = new NbdHandshake(channel, server).negotiate();
            if (negotiated == null) {
                return;
            }
            this.negotiated = true;
            setUp(negotiated);
            LOG.debug("nbd connection {} from {} serving export '{}' (structured={}, flags=0x{})", id, peer,
                    negotiated.export().name(), structured, Integer.toHexString(transmissionFlags));
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
                stopWriter();
                closeChannel();
                finished = true;
                server.connectionFinished(this);
            }
        }
    }

    private void setUp(NbdHandshake.Result negotiated) {
        export = negotiated.export();
        device = negotiated.export().device();
        structured = negotiated.structuredReplies();
        baseAllocation = negotiated.baseAllocation();
        transmissionFlags = negotiated.transmissionFlags();
        maxPayload = negotiated.maxPayload();
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
        returned = new OneToOneConcurrentArrayQueue<>(n);
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
        int n = channel.read(receive);
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
        Slot s = acquireSlot();
        s.handle = handle;
        s.command = type;
        s.offset = offset;
        s.length = (int) length;
        s.fastZero = false;
        DeviceInfo info = device.info();
        switch (type) {
            case NbdProtocol.CMD_READ: {
                int status = validate(info, IoOp.READ, flags,
                        NbdProtocol.CMD_FLAG_FUA | (structured ? NbdProtocol.CMD_FLAG_DF : 0), offset, length);
                if (status != IoStatus.OK) {
                    completeLocally(s, status);
                    return;
                }
                ensureCapacity(s, (int) length);
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
                ensureCapacity(s, (int) length);
                if (!readPayload(s, (int) length)) {
                    release(s); // the client vanished mid-payload: nothing reaches the device
                    draining = true;
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
                submit(s, IoOp.DISCARD, offset, (int) length, ioFlags(flags), null);
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
                if (status != IoStatus.OK) {
                    completeLocally(s, status);
                    return;
                }
                submit(s, IoOp.WRITE_ZEROES, offset, (int) length, ioFlags(flags), null);
                return;
            }
            case NbdProtocol.CMD_CACHE: {
                // A page-cache hint: validated like a READ, then answered; the device needs no call.
                completeLocally(s, validate(info, IoOp.READ, flags, NbdProtocol.CMD_FLAG_FUA, offset, length));
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

    /** NBD-level checks, then {@link IoRequests#check}, with the error values the NBD document asks for. */
    private int validate(DeviceInfo info, IoOp op, int flags, int allowedFlags, long offset, long length) {
        if ((flags & ~allowedFlags) != 0) {
            return IoStatus.EINVAL;
        }
        if ((op == IoOp.READ || op == IoOp.WRITE) && length > maxPayload) {
            return IoStatus.EINVAL;
        }
        int status = IoRequests.check(info, op, offset, length, ioFlags(flags));
        if (status == IoStatus.EOVERFLOW) {
            // Beyond the end: ENOSPC for writes, EINVAL for the rest (NBD does not use EOVERFLOW here).
            return op == IoOp.WRITE || op == IoOp.WRITE_ZEROES ? IoStatus.ENOSPC : IoStatus.EINVAL;
        }
        return status;
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
        if (!baseAllocation || (flags & ~(NbdProtocol.CMD_FLAG_FUA | NbdProtocol.CMD_FLAG_REQ_ONE)) != 0
                || length == 0 || offset < 0 || offset > info.size() || length > info.size() - offset
                || ((offset | length) & (lbs - 1)) != 0) {
            completeLocally(s, IoStatus.EINVAL);
            return;
        }
        ensureCapacity(s, MAX_EXTENTS * 8);
        boolean one = (flags & NbdProtocol.CMD_FLAG_REQ_ONE) != 0;
        s.data.clear(); // a reused buffer still has the limit of its last request
        extents.begin(s.data, offset, length, lbs, one ? 1 : MAX_EXTENTS);
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

    private void submit(Slot s, IoOp op, long offset, int length, int flags, ByteBuffer buffer) {
        s.submitted();
        try {
            device.submit(op, offset, length, flags, buffer, s.tag(), this);
        } catch (RuntimeException e) {
            // The contract says submit never throws; if it does, the request fails rather than hangs.
            LOG.warn("nbd connection {}: device submit threw", id, e);
            onComplete(s.tag(), IoStatus.EIO);
        }
    }

    /** Completes a request the server answers itself (validation errors, CACHE, BLOCK_STATUS). */
    private void completeLocally(Slot s, int status) {
        s.submitted();
        onComplete(s.tag(), status);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Completions
    // ---------------------------------------------------------------------------------------------------------

    @Override
    public void onComplete(long tag, int status) {
        int index = (int) tag;
        Slot[] all = slots;
        if (index < 0 || index >= all.length) {
            return; // not ours: a misbehaving device must not corrupt another request
        }
        Slot s = all[index];
        if (s.generation != (int) (tag >>> 32) || !s.complete()) {
            return; // stale or second completion
        }
        s.status = status;
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
                s.data.limit(s.length).position(0); // the device may have moved them
                gather[at] = h;
                gather[at + 1] = s.data;
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
        ByteBuffer[] gather = readerGather;
        int buffers = 0;
        long bytes = 0;
        for (int i = 0; i < count; i++) {
            int added = encodeReply(inlineReady[i], gather, buffers);
            for (int k = 0; k < added; k++) {
                bytes += gather[buffers + k].remaining();
            }
            buffers += added;
        }
        try {
            synchronized (writeLock) {
                writeFully(gather, buffers, bytes);
            }
        } finally {
            for (int i = 0; i < count; i++) {
                release(inlineReady[i]);
                inlineReady[i] = null;
            }
            for (int i = 0; i < buffers; i++) {
                gather[i] = null;
            }
            inlineReadyCount = 0;
            inlineReadyBytes = 0;
        }
    }

    private void writeFully(ByteBuffer[] gather, int count, long bytes) throws IOException {
        int first = 0;
        long left = bytes;
        while (left > 0) {
            long n = channel.write(gather, first, count - first);
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
        s.free();
        if (s.data != null && allocatedBytes > options.maxBufferedBytesPerConnection()) {
            allocatedBytes -= s.data.capacity();
            s.data = null;
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
        readerParked = true;
        try {
            if (returned.isEmpty() && !forced && !broken) {
                LockSupport.park(this);
            }
        } finally {
            readerParked = false;
        }
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

    /** Gives {@code s} a data buffer of at least {@code length} bytes, within the connection's buffer budget. */
    private void ensureCapacity(Slot s, int length) throws IOException {
        ByteBuffer d = s.data;
        if (d != null && d.capacity() >= length) {
            return;
        }
        int capacity = Math.max(4096, length);
        if (capacity < (1 << 30)) {
            capacity = Math.max(length, Integer.highestOneBit(capacity - 1) << 1);
        }
        long budget = options.maxBufferedBytesPerConnection();
        long current = d == null ? 0 : d.capacity();
        if (allocatedBytes - current + capacity > budget) {
            dropIdleBuffers();
            // Still over: wait for requests in flight to return their buffers (this slot counts as one).
            while (allocatedBytes - current + capacity > budget && inFlight > 1) {
                flushInline();
                reclaimReturned();
                dropIdleBuffers();
                if (allocatedBytes - current + capacity > budget && inFlight > 1) {
                    awaitReturned();
                    dropIdleBuffers();
                }
            }
        }
        allocatedBytes -= current;
        s.data = ByteBuffer.allocateDirect(capacity);
        allocatedBytes += capacity;
    }

    private void dropIdleBuffers() {
        for (int i = 0; i < freeCount; i++) {
            Slot idle = slots[freeStack[i]];
            if (idle.data != null) {
                allocatedBytes -= idle.data.capacity();
                idle.data = null;
            }
        }
    }

    /** Copies the WRITE payload into the slot: the buffered part, then straight from the socket. */
    private boolean readPayload(Slot s, int length) throws IOException {
        ByteBuffer d = s.data;
        d.clear().limit(length);
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
                if (channel.read(d) < 0) {
                    return false;
                }
            }
        }
        d.position(0);
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
            int n = channel.read(receive);
            if (n < 0) {
                receive.clear().flip();
                return false;
            }
            left -= n;
        }
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
                    }
                } catch (IOException e) {
                    broken = true;
                    LOG.debug("nbd connection {}: writing replies failed: {}", id, e.toString());
                }
                for (int i = 0; i < buffers; i++) {
                    gather[i] = null;
                }
            }
            for (int i = 0; i < count; i++) {
                returned.offer(batch[i]);
                batch[i] = null;
            }
            if (readerParked || broken) {
                LockSupport.unpark(readerThread);
            }
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
