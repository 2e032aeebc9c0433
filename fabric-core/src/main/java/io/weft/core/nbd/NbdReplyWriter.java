package io.weft.core.nbd;

import io.weft.core.io.IoStatus;
import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.channels.GatheringByteChannel;
import java.util.concurrent.locks.LockSupport;
import org.agrona.concurrent.ManyToOneConcurrentArrayQueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes the replies of one {@link NbdConnection}: encodes each completed request's reply into its slot's header
 * buffer (the data gathered straight from the slot's buffer or the device's lent bytes) and writes batches of them
 * in gathering writes, under one lock so replies never interleave. The one gather-write path
 * ({@link #writeReplies}) serves both sources of completed requests:
 * <ul>
 *   <li>completions that ran on the reader (an inline device) are collected in the reader's batch and written by
 *   the reader itself ({@link #flushInline}): no thread hand-off;</li>
 *   <li>completions on other threads go through a lock-free many-to-one queue to the writer thread, started on the
 *   first such completion, which batches them and hands the slots back to the reader
 *   ({@link NbdRequestSlots#returned}).</li>
 * </ul>
 * For the server's watchdog it bumps the write mark around every write call and counts replies written (release
 * stores, no clock). After NBD_OPT_STARTTLS the replies go through the {@link io.weft.core.tls.TlsChannel}.
 */
final class NbdReplyWriter {
    private static final Logger LOG = LoggerFactory.getLogger(NbdReplyWriter.class);
    /**
     * Empty polls the writer spins through before it parks: completions from a fast transport often come in quick
     * succession, and a few microseconds of spinning are cheaper than a park/unpark round trip for each of them.
     */
    private static final int WRITER_SPINS = 100;
    /** Largest write call: the write-stall timeout sees progress at least every this many bytes. */
    static final int WRITE_SLICE = 1 << 20;
    private static final VarHandle WRITE_MARK;
    private static final VarHandle REPLIES_WRITTEN;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            WRITE_MARK = lookup.findVarHandle(NbdReplyWriter.class, "writeMark", long.class);
            REPLIES_WRITTEN = lookup.findVarHandle(NbdReplyWriter.class, "repliesWritten", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final NbdConnection c;
    private final GatheringByteChannel out;
    private final boolean structured;
    private final Object writeLock = new Object();
    /** Odd while a write call to the socket runs; bumped before and after each (under the write lock). */
    @SuppressWarnings("unused") private long writeMark;
    /** Replies written (under the write lock); the watchdog compares it with the requests received. */
    @SuppressWarnings("unused") private long repliesWritten;

    // Reader-owned: replies of requests that completed on the reader.
    private final NbdRequestSlot[] inlineReady;
    private int inlineReadyCount;
    long inlineReadyBytes;
    private final ByteBuffer[] readerGather;

    // Completions from other threads, and the writer thread that writes their replies.
    private final ManyToOneConcurrentArrayQueue<NbdRequestSlot> asyncCompleted;
    private volatile Thread writerThread;
    private volatile boolean writerStop;
    private volatile boolean writerParked;

    NbdReplyWriter(NbdConnection c, GatheringByteChannel out, boolean structured, int maxInFlight) {
        this.c = c;
        this.out = out;
        this.structured = structured;
        inlineReady = new NbdRequestSlot[maxInFlight];
        readerGather = new ByteBuffer[2 * maxInFlight];
        asyncCompleted = new ManyToOneConcurrentArrayQueue<>(maxInFlight);
    }

    long writeMark() {
        return (long) WRITE_MARK.getAcquire(this);
    }

    long repliesWritten() {
        return (long) REPLIES_WRITTEN.getAcquire(this);
    }

    /** The reader's own completion: its reply goes out with the reader's next flush. */
    void completedOnReader(NbdRequestSlot s) {
        inlineReady[inlineReadyCount++] = s;
        inlineReadyBytes += replyBytes(s);
    }

    /** A completion on another thread: the writer thread writes its reply. */
    void completedElsewhere(NbdRequestSlot s) {
        asyncCompleted.offer(s); // cannot fail: at most one entry per slot, and the queue has a place per slot
        wakeWriter();
    }

    private int replyBytes(NbdRequestSlot s) {
        return s.status == IoStatus.OK && s.command == NbdProtocol.CMD_READ ? s.length + 32 : 32;
    }

    /**
     * Encodes the reply of a completed slot into its header buffer and adds header (and data) to {@code gather}.
     * @return the number of buffers added
     */
    private int encodeReply(NbdRequestSlot s, ByteBuffer[] gather, int at) {
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
    void flushInline() throws IOException {
        int count = inlineReadyCount;
        if (count == 0) {
            return;
        }
        try {
            writeReplies(inlineReady, count, readerGather);
        } finally {
            for (int i = 0; i < count; i++) {
                c.slots.release(inlineReady[i]);
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
    private void writeReplies(NbdRequestSlot[] batch, int count, ByteBuffer[] gather) throws IOException {
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

    /** Wakes the writer thread, if any, so it sees the connection closed (forced close; any thread). */
    void wakeForClose() {
        Thread w = writerThread;
        if (w != null) {
            LockSupport.unpark(w);
        }
    }

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
            Thread w = new Thread(this::writerLoop, "weft-nbd-" + c.id + "-writer");
            w.setDaemon(true);
            writerThread = w;
            w.start();
        }
        return writerThread;
    }

    private void writerLoop() {
        int n = c.options.maxInFlightPerConnection();
        NbdRequestSlot[] batch = new NbdRequestSlot[n];
        ByteBuffer[] gather = new ByteBuffer[2 * n];
        int idle = 0;
        while (true) {
            int count = 0;
            NbdRequestSlot s;
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
            if (!c.broken && !c.forced) {
                try {
                    writeReplies(batch, count, gather);
                } catch (IOException e) {
                    c.broken = true;
                    LOG.debug("nbd connection {}: writing replies failed: {}", c.id, e.toString());
                }
            }
            // The reader may be blocked on the socket for a long time before it takes these slots back, so under
            // budget pressure their buffers are given back here (the writer owns a slot until it hands it back).
            boolean drop = !c.server.mayKeepIdleBuffers();
            for (int i = 0; i < count; i++) {
                if (drop) {
                    c.slots.dropBufferFromWriter(batch[i]);
                }
                c.slots.endLoan(batch[i]); // its reply is written (or never will be): the lent bytes go back
                c.slots.returned.offer(batch[i]);
                batch[i] = null;
            }
            c.slots.returned.signal(c.broken);
        }
    }

    void stopWriter() {
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
}
