package io.weft.rdma.faults;

import io.weft.rdma.verbs.Access;
import io.weft.rdma.verbs.CompletionHandler;
import io.weft.rdma.verbs.ConnectionOptions;
import io.weft.rdma.verbs.MemoryRegion;
import io.weft.rdma.verbs.ProtectionDomain;
import io.weft.rdma.verbs.VerbsConnection;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One connection of a {@link WireFaultProvider}. Outbound: posts are passed on, or (while holding) kept with a copy of
 * their payload until {@link #releaseOutbound} or {@link #dropOutbound}; {@link #duplicateNextOutbound} posts the next
 * frame twice. Inbound: {@link #holdInbound} keeps completions back, {@link #duplicateNextInbound} delivers the next
 * one twice, {@link #reorderNextInboundPair} swaps the next two, {@link #dropNextInbound} loses the next one. A
 * connection closed by its owner delivers nothing more but its error (as a queue pair does), yet its close waits
 * behind frames held at that moment until they are released (or dropped).
 */
public final class WireFaultConnection implements VerbsConnection {
    static final int RECEIVE = 1;
    static final int WRITE_IMM = 2;
    private static final int OUT_SEND = 1;
    private static final int OUT_WRITE = 2;
    private static final int OUT_WRITE_IMM = 3;

    private final VerbsConnection delegate;
    private final WireFaultProvider.FaultQueue queue;
    final InetSocketAddress connectedTo;
    private final byte[] privateData;
    private final MemoryRegion scratch;
    private final ConcurrentLinkedQueue<Runnable> commands = new ConcurrentLinkedQueue<>();
    private Object attachment;

    /** Read by the owner at each post; set by any thread, so a hold applies to every post after it returns. */
    private volatile boolean holdingOut;
    private volatile boolean holdingIn;
    private volatile Thread lastWriteWithImmediateThread;
    private volatile boolean closeRequested;
    // owner thread only
    private final List<Frame> heldOut = new ArrayList<>();
    private boolean duplicateOut;
    private boolean closeBehindHeld;
    private boolean closeAfterFlush;
    private final ArrayDeque<Completion> heldIn = new ArrayDeque<>();
    private int duplicateIn;
    private int dropIn;
    private Completion reorderFirst;
    private boolean reorderArmed;

    /** Frames posted to the delegate after a release (the test waits on it). */
    private final AtomicInteger released = new AtomicInteger();
    private final AtomicInteger held = new AtomicInteger();
    private final AtomicInteger duplicatedIn = new AtomicInteger();
    private final AtomicInteger reorderedIn = new AtomicInteger();

    private record Frame(int type, byte[] payload, long remoteAddress, int rkey, int immediate) {
    }

    private record Completion(int kind, long wrId, int immediate, int byteLength) {
    }

    WireFaultConnection(VerbsConnection delegate, ProtectionDomain pd, WireFaultProvider.FaultQueue queue,
                        ConnectionOptions options, InetSocketAddress connectedTo, byte[] privateData)
            throws IOException {
        this.delegate = delegate;
        this.queue = queue;
        this.connectedTo = connectedTo;
        this.privateData = privateData;
        this.scratch = pd.register(ByteBuffer.allocateDirect(Math.max(64, options.maxMessageSize())),
                Access.LOCAL_WRITE);
    }

    /** The private data this connection was opened (or accepted) with. */
    public ByteBuffer connectPrivateData() {
        return ByteBuffer.wrap(privateData).asReadOnlyBuffer();
    }

    // ------------------------------------------------------------ commands (any thread)

    /** From now on, posted frames are kept (with their payload as posted) instead of sent. */
    public void holdOutbound() {
        holdingOut = true;
    }

    /** Sends the held frames in order, stops holding, and carries out a close that waited behind them. */
    public void releaseOutbound() {
        command(() -> {
            holdingOut = false;
            for (Frame f : heldOut) {
                post(f);
                released.incrementAndGet();
            }
            heldOut.clear();
            if (closeBehindHeld) {
                closeBehindHeld = false;
                closeAfterFlush = true; // the delegate's poll right after this pushes the frames out first
            }
        });
    }

    /** Loses the held frames and stops holding (a close that waited behind them happens now). */
    public void dropOutbound() {
        command(() -> {
            holdingOut = false;
            heldOut.clear();
            if (closeBehindHeld) {
                closeBehindHeld = false;
                delegate.close();
            }
        });
    }

    /** The next frame posted goes out twice. */
    public void duplicateNextOutbound() {
        command(() -> duplicateOut = true);
    }

    /** Keeps completions back until {@link #releaseInbound}. */
    public void holdInbound() {
        holdingIn = true;
    }

    /** Delivers the held completions in order and stops holding. */
    public void releaseInbound() {
        command(() -> holdingIn = false);
    }

    /** The next {@code n} completions are each delivered twice. */
    public void duplicateNextInbound(int n) {
        command(() -> duplicateIn += n);
    }

    /** The next two completions are delivered in the opposite order. */
    public void reorderNextInboundPair() {
        command(() -> reorderArmed = true);
    }

    /** The next {@code n} completions are lost. */
    public void dropNextInbound(int n) {
        command(() -> dropIn += n);
    }

    /** Frames currently held outbound. */
    public int heldOutbound() {
        return held.get();
    }

    /** Frames posted after a release. */
    public int releasedOutbound() {
        return released.get();
    }

    public int duplicatedInbound() {
        return duplicatedIn.get();
    }

    public int reorderedInbound() {
        return reorderedIn.get();
    }

    private void command(Runnable r) {
        commands.add(r);
        queue.wakeup();
    }

    boolean hasCommands() {
        return !commands.isEmpty();
    }

    // ------------------------------------------------------------ owner thread

    int runCommands(CompletionHandler target) {
        int work = 0;
        Runnable r;
        while ((r = commands.poll()) != null) {
            r.run();
            work++;
        }
        if (!holdingIn && !heldIn.isEmpty() && !closeRequested) {
            while (!heldIn.isEmpty()) {
                deliver(target, heldIn.poll());
                work++;
            }
        }
        return work;
    }

    int afterPoll() {
        if (closeAfterFlush) {
            closeAfterFlush = false;
            delegate.close();
            return 1;
        }
        return 0;
    }

    void inbound(CompletionHandler target, int kind, long wrId, int immediate, int byteLength) {
        if (closeRequested) {
            return; // a closed queue pair delivers nothing but its error
        }
        Completion c = new Completion(kind, wrId, immediate, byteLength);
        if (dropIn > 0) {
            dropIn--;
            return;
        }
        if (holdingIn) {
            heldIn.add(c);
            return;
        }
        if (reorderArmed) {
            if (reorderFirst == null) {
                reorderFirst = c;
                return;
            }
            reorderArmed = false;
            Completion first = reorderFirst;
            reorderFirst = null;
            reorderedIn.incrementAndGet(); // counted first: a test woken by a delivery sees it
            deliver(target, c);
            deliver(target, first);
            return;
        }
        boolean twice = duplicateIn > 0;
        if (twice) {
            duplicateIn--;
            duplicatedIn.incrementAndGet();
        }
        deliver(target, c);
        if (twice) {
            deliver(target, c);
        }
    }

    private void deliver(CompletionHandler target, Completion c) {
        if (c.kind == RECEIVE) {
            target.onReceive(this, c.wrId, c.byteLength);
        } else {
            target.onWriteWithImmediate(this, c.wrId, c.immediate, c.byteLength);
        }
    }

    void error(CompletionHandler target, int status, String reason) {
        closeRequested = true;
        target.onError(this, status, reason);
    }

    /** The thread that posted the last write-with-immediate (who posts requests: the agent or the submitter). */
    public Thread lastWriteWithImmediateThread() {
        return lastWriteWithImmediateThread;
    }

    private boolean outbound(int type, MemoryRegion local, int offset, int length, long remoteAddress, int rkey,
                             int immediate) {
        if (type == OUT_WRITE_IMM) {
            lastWriteWithImmediateThread = Thread.currentThread();
        }
        if (closeRequested) {
            return true; // flushed, as on a closed queue pair
        }
        if (holdingOut) {
            byte[] payload = new byte[length];
            local.buffer().duplicate().position(offset).get(payload);
            heldOut.add(new Frame(type, payload, remoteAddress, rkey, immediate));
            held.incrementAndGet();
            return true;
        }
        boolean ok = send(type, local, offset, length, remoteAddress, rkey, immediate);
        if (ok && duplicateOut) {
            duplicateOut = false;
            send(type, local, offset, length, remoteAddress, rkey, immediate);
        }
        return ok;
    }

    private void post(Frame f) {
        scratch.buffer().duplicate().put(0, f.payload);
        send(f.type, scratch, 0, f.payload.length, f.remoteAddress, f.rkey, f.immediate);
        held.decrementAndGet();
    }

    private boolean send(int type, MemoryRegion local, int offset, int length, long remoteAddress, int rkey,
                         int immediate) {
        switch (type) {
            case OUT_SEND:
                return delegate.postSend(local, offset, length);
            case OUT_WRITE:
                return delegate.postWrite(local, offset, length, remoteAddress, rkey);
            default:
                return delegate.postWriteWithImmediate(local, offset, length, remoteAddress, rkey, immediate);
        }
    }

    // ------------------------------------------------------------ VerbsConnection

    @Override
    public boolean postSend(MemoryRegion local, int offset, int length) {
        return outbound(OUT_SEND, local, offset, length, 0, 0, 0);
    }

    @Override
    public boolean postWrite(MemoryRegion local, int offset, int length, long remoteAddress, int rkey) {
        return outbound(OUT_WRITE, local, offset, length, remoteAddress, rkey, 0);
    }

    @Override
    public boolean postWriteWithImmediate(MemoryRegion local, int offset, int length, long remoteAddress, int rkey,
                                          int immediate) {
        return outbound(OUT_WRITE_IMM, local, offset, length, remoteAddress, rkey, immediate);
    }

    @Override
    public boolean postReceive(MemoryRegion local, int offset, int length, long wrId) {
        return delegate.postReceive(local, offset, length, wrId);
    }

    @Override
    public ByteBuffer peerPrivateData() {
        return delegate.peerPrivateData();
    }

    @Override
    public InetSocketAddress localAddress() {
        return delegate.localAddress();
    }

    @Override
    public InetSocketAddress remoteAddress() {
        return delegate.remoteAddress();
    }

    @Override
    public boolean isOpen() {
        return !closeRequested && delegate.isOpen();
    }

    @Override
    public Object attachment() {
        return attachment;
    }

    @Override
    public void attach(Object attachment) {
        this.attachment = attachment;
    }

    /**
     * Any thread. The owner stops seeing completions at once; the delegate closes now, or after the frames held at
     * this moment were released (or dropped).
     */
    @Override
    public void close() {
        command(() -> {
            if (closeRequested && !closeBehindHeld) {
                return;
            }
            closeRequested = true;
            if (!heldOut.isEmpty() || holdingOut) {
                closeBehindHeld = true;
            } else {
                delegate.close();
            }
        });
    }

    @Override
    public String toString() {
        return "fault-injecting " + delegate;
    }
}
