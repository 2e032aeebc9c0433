package io.weft.core.nbd;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoCompletion;
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
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client connection: handshake, then the transmission phase; its lifecycle, its watchdog marks and the entry
 * point of every completion. The work is done by four parts, each with one job:
 * <ul>
 *   <li>{@link NbdRequestReader} — the read loop on the connection's <b>reader</b> thread: decodes requests,
 *   validates them and submits them to the device from that thread;</li>
 *   <li>{@link NbdRequestSlots} — the pre-allocated request slots ({@link NbdRequestSlot}, one per request in flight,
 *   {@link NbdServerOptions#maxInFlightPerConnection}), their data buffers within the connection's limit and the
 *   server's buffer budget, their lent READs, and what is given back or cancelled when the connection ends;</li>
 *   <li>{@link NbdReplyWriter} — encodes replies and writes them in gathering writes under one lock: a completion
 *   that ran on the reader (an inline device) is written by the reader itself, with no thread hand-off; one on
 *   another thread goes to the <b>writer</b> thread, which exists only once a device completes elsewhere;</li>
 *   <li>{@link NbdUnalignedWrites} — read-modify-write for clients on the default block sizes.</li>
 * </ul>
 * Nothing is allocated per request in steady state.
 *
 * <p>Ownership: a slot's data buffer is the device's from submit until the request's completion (of its last part)
 * has run; only then is it read for the reply and the slot reused. A connection that gives up on requests in flight
 * cancels them ({@link BlockDevice#cancel}) and never reuses their slots ({@link NbdRequestSlots#cancelInFlight}).
 *
 * <p>Zero-copy READ replies: when the device lends its bytes ({@link ReadLending}; a buffered file store does, through
 * a read-only mapping), an aligned READ is submitted as a lending READ and needs no request buffer: its reply is
 * gathered straight from the lent bytes into the socket, and the loan is released once the reply was written (or
 * the connection gave up on it). Who owns the lent bytes: the device lends them at the completion ({@link #onLent});
 * from then the slot's owner (the reader for an inline completion, the writer for another thread's) only reads them,
 * for the reply, and ends the loan before the slot is reused ({@link NbdRequestSlots#endLoan}); a loan that arrives
 * after the connection has left is released at once, and one the connection has not ended when it leaves is released
 * then ({@link NbdRequestSlots#returnBuffersAtEnd}) — the slot's loan flag makes sure exactly one of them releases
 * it. Plaintext only: over TLS the reply is encrypted from a copy anyway.
 *
 * <p>Limits (see {@link NbdServerOptions}): for the server's watchdog the reader and the reply writer only bump
 * progress marks (a release store, no clock, no system call); the watchdog owns the clock and closes a connection
 * whose marks stood still for a timeout ({@link #checkProgress}).
 *
 * <p>TLS: after NBD_OPT_STARTTLS the reader reads and the reply writer writes through a {@link TlsChannel} over the
 * same socket; the threads, the write lock and the progress marks stay as they are (see docs/nbd.md, "TLS").
 */
final class NbdConnection implements IoCompletion, ReadLending.LoanCompletion, Runnable {
    private static final Logger LOG = LoggerFactory.getLogger(NbdConnection.class);
    /** Longest the reader waits in {@link BlockDevice#awaitCompletions} before it blocks on the socket. */
    static final long AWAIT_COMPLETIONS_NANOS = 1_000_000;

    final long id;
    final NbdServer server;
    /** The socket: closed and shut down here whether or not TLS runs over it. */
    private final SocketChannel channel;
    /** Non-null when the client negotiated TLS. */
    private TlsChannel tls;
    final NbdServerOptions options;
    private final String peer;
    final Thread readerThread;

    // Negotiated in the handshake; the parts are made then (setUp), before any completion can arrive.
    private volatile NbdExport export;
    BlockDevice device;
    /** The device's lending side when it lends READs and the connection is plaintext; else null. */
    volatile ReadLending lender;
    int maxPayload;
    NbdRequestSlots slots;
    volatile NbdReplyWriter replies;
    NbdRequestReader reader;
    NbdUnalignedWrites unaligned;

    // Cross-thread state.
    volatile boolean draining;
    volatile boolean forced;
    volatile boolean broken;
    private volatile boolean finished;
    private volatile boolean negotiated;
    /** Set once the reader has left: buffers of requests still with the device are given back by their completion. */
    volatile boolean tornDown;

    // Progress marks for the watchdog (written with release stores by the reader, read by the watchdog; the reply
    // writer keeps its own).
    private static final VarHandle READ_MARK;
    private static final VarHandle READ_PHASE;
    private static final VarHandle REQUESTS_RECEIVED;
    /** The reader is not in a socket read (decoding, submitting, waiting for slots or the device). */
    static final int PHASE_BUSY = 0;
    /** The reader waits for the first byte of a request (the idle timeout may apply). */
    static final int PHASE_AWAITING_REQUEST = 1;
    /** The reader waits for the rest of a started request, header or payload (the read-stall timeout applies). */
    static final int PHASE_IN_REQUEST = 2;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            READ_MARK = lookup.findVarHandle(NbdConnection.class, "readMark", long.class);
            READ_PHASE = lookup.findVarHandle(NbdConnection.class, "readPhase", int.class);
            REQUESTS_RECEIVED = lookup.findVarHandle(NbdConnection.class, "requestsReceived", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** Bumped by the reader at every phase change and every socket read that returned. */
    @SuppressWarnings("unused") private long readMark;
    @SuppressWarnings("unused") private int readPhase;
    /** Requests decoded (reader): equal to the replies written when nothing is outstanding. */
    @SuppressWarnings("unused") private long requestsReceived;
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
                    && (long) REQUESTS_RECEIVED.getAcquire(this) == replies.repliesWritten()
                    && (replies.writeMark() & 1) == 0) {
                LOG.info("{} closed: idle for {} (weft.nbd.idle-timeout)", this, options.idleTimeout());
                forceClose();
                return;
            }
        }
        long writeMark = replies.writeMark();
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
    void readProgress(int phase) {
        READ_PHASE.setRelease(this, phase);
        READ_MARK.setRelease(this, ++readMarkOwn);
    }

    /** Reader: counts a decoded request for the watchdog's idle check. */
    void requestReceived() {
        REQUESTS_RECEIVED.setRelease(this, ++requestsOwn);
    }

    /** Closes the socket now; replies not yet written are lost. Safe from any thread. */
    void forceClose() {
        forced = true;
        draining = true;
        closeChannel();
        LockSupport.unpark(readerThread);
        NbdReplyWriter r = replies;
        if (r != null) {
            r.wakeForClose();
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
            }
            setUp(negotiated);
            this.negotiated = true; // after setUp: the watchdog reads the parts it made
            LOG.debug("nbd connection {} from {} serving export '{}' (structured={}, flags=0x{}, tls={})", id, peer,
                    negotiated.export().name(), negotiated.structuredReplies(),
                    Integer.toHexString(negotiated.transmissionFlags()), tls != null);
            reader.transmission();
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
                    slots.awaitInFlight();
                }
            } catch (IOException e) {
                LOG.debug("nbd connection {}: replies after end of input not delivered: {}", id, e.toString());
            } finally {
                if (slots != null) {
                    slots.cancelInFlight();
                }
                if (replies != null) {
                    replies.stopWriter();
                }
                if (graceful && tls != null && !forced && !broken) {
                    tls.closeOutbound(); // close_notify, so the client sees a clean end rather than a truncation
                }
                closeChannel();
                tornDown = true; // from here a late completion gives its slot's buffer back itself (deliver)
                VarHandle.fullFence();
                if (slots != null) {
                    slots.returnBuffersAtEnd();
                }
                finished = true;
                server.connectionFinished(this);
            }
        }
    }

    private void setUp(NbdHandshake.Result negotiated) {
        export = negotiated.export();
        device = negotiated.export().device();
        maxPayload = negotiated.maxPayload();
        lender = tls == null && device instanceof ReadLending ? (ReadLending) device : null;
        int n = options.maxInFlightPerConnection();
        ReadableByteChannel in = tls != null ? tls : channel;
        GatheringByteChannel out = tls != null ? tls : channel;
        slots = new NbdRequestSlots(this, n);
        replies = new NbdReplyWriter(this, out, negotiated.structuredReplies(), n);
        unaligned = new NbdUnalignedWrites(this);
        reader = new NbdRequestReader(this, in, negotiated, lender, options.receiveBufferSize());
        // removeExport() or close() may have scanned the connections before this one recorded its export: check
        // again now that it is recorded (one side or the other sees the change).
        if (server.isClosing() || !server.isServed(export)) {
            draining = true;
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Completions: every device completion of this connection's requests lands here
    // ---------------------------------------------------------------------------------------------------------

    @Override
    public void onComplete(long tag, int status) {
        NbdRequestSlot s = slots.completedBy(tag, status);
        if (s != null) {
            deliver(s);
        }
    }

    @Override
    public void onLent(long tag, int status, ByteBuffer base, int at, long loan) {
        NbdRequestSlot s = slots.completedBy(tag, status);
        if (s == null) {
            if (status == IoStatus.OK) {
                slots.releaseLoan(loan); // stale or second completion: nobody will read these bytes
            }
            return;
        }
        if (s.status == IoStatus.OK) {
            if (base == null || at < 0 || at > base.capacity() - s.length) {
                // A lent range outside its buffer (a device bug): never gather from it; the READ fails instead.
                LOG.warn("nbd connection {}: device lent [{}, +{}) of a buffer of {} bytes: answered EIO", id, at,
                        s.length, base == null ? 0 : base.capacity());
                slots.releaseLoan(loan);
                s.status = IoStatus.EIO;
            } else {
                s.holdLoan(base, at, loan);
            }
        }
        deliver(s);
    }

    private void deliver(NbdRequestSlot s) {
        if (tornDown) {
            slots.returnBudget(s); // the connection is gone: nobody reads this buffer again
            slots.endLoan(s);
            return;
        }
        if (Thread.currentThread() == readerThread) {
            replies.completedOnReader(s);
        } else {
            replies.completedElsewhere(s);
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
