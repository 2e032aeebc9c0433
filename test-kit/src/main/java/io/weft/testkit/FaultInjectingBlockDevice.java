package io.weft.testkit;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * A {@link BlockDevice} wrapper that misbehaves on command, the way a transport over a slow, lossy or broken network
 * does. Each submitted request gets one {@link Fault}: the next one {@linkplain #script scripted}, else the
 * {@linkplain #defaultFault default}.
 * <ul>
 *   <li>{@link Fault#PASS}: straight to the inner device.</li>
 *   <li>{@link Fault#HOLD}: kept, not executed, until {@link #release}/{@link #releaseAll}/{@link #releaseOne}
 *   (in any order: that is the reordering). Then it is executed on the inner device, touching the caller's buffer
 *   <em>at release time</em> — exactly what a transport's late response does when it copies into the buffer.</li>
 *   <li>{@link Fault#DROP}: executed at once (the data lands, a READ fills the buffer), but the answer is lost: the
 *   completion never runs unless the request is cancelled.</li>
 *   <li>{@link Fault#DUPLICATE}: executed once, the completion runs twice (a device breaking exactly-once).</li>
 *   <li>{@link Fault#DELAY}: like HOLD, released by a timer after {@link #delayNanos} on the kit's timer thread.</li>
 *   <li>{@link Fault#FAIL}: not executed, completed at once with EIO.</li>
 * </ul>
 * {@link #cancel} of a request still held or dropped here completes it with {@link IoStatus#ECANCELED} and forgets
 * it (a later release does nothing), unless told to {@linkplain CancelAnswer#IGNORE ignore} cancels; a request
 * already passed to the inner device has its cancel forwarded there.
 *
 * <p>Thread-safe; completions of released requests run on the releasing thread.
 */
public final class FaultInjectingBlockDevice implements BlockDevice {

    /** What happens to one request. */
    public enum Fault { PASS, HOLD, DROP, DUPLICATE, DELAY, FAIL }

    /** What a cancel does to a request still held or dropped here. */
    public enum CancelAnswer { ANSWER, IGNORE }

    /** A request kept here (held, delayed or dropped). */
    public static final class Request {
        public final IoOp op;
        public final long offset;
        public final int length;
        public final int flags;
        public final ByteBuffer buffer;
        public final long tag;
        public final IoCompletion completion;
        public final Fault fault;
        /** What the inner device answered a DROP request (the answer that was lost); MIN_VALUE until then. */
        volatile int innerStatus = Integer.MIN_VALUE;

        Request(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag, IoCompletion completion,
                Fault fault) {
            this.op = op;
            this.offset = offset;
            this.length = length;
            this.flags = flags;
            this.buffer = buffer;
            this.tag = tag;
            this.completion = completion;
            this.fault = fault;
        }

        @Override
        public String toString() {
            return fault + " " + op + " @" + offset + "+" + length + " tag " + tag;
        }
    }

    private final BlockDevice inner;
    private final String name;
    private final List<Request> kept = new ArrayList<>();
    private final ArrayDeque<Fault> script = new ArrayDeque<>();
    private volatile Fault defaultFault = Fault.PASS;
    private volatile CancelAnswer cancelAnswer = CancelAnswer.ANSWER;
    private volatile long delayNanos = 1_000_000L;
    private ScheduledExecutorService timer;
    private long submitted;
    private long cancelsAsked;
    private long cancelsAnswered;

    public FaultInjectingBlockDevice(BlockDevice inner) {
        this(inner, "faulty");
    }

    public FaultInjectingBlockDevice(BlockDevice inner, String name) {
        this.inner = inner;
        this.name = name;
    }

    public BlockDevice inner() {
        return inner;
    }

    /** The fault of every request not scripted. */
    public FaultInjectingBlockDevice defaultFault(Fault fault) {
        defaultFault = fault;
        return this;
    }

    /** The next requests' faults, in order, before the default applies again. */
    public synchronized FaultInjectingBlockDevice script(Fault... faults) {
        for (Fault f : faults) {
            script.add(f);
        }
        return this;
    }

    /** Forgets the scripted faults not used yet. */
    public synchronized FaultInjectingBlockDevice clearScript() {
        script.clear();
        return this;
    }

    public FaultInjectingBlockDevice cancelAnswer(CancelAnswer answer) {
        cancelAnswer = answer;
        return this;
    }

    public FaultInjectingBlockDevice delayNanos(long nanos) {
        delayNanos = nanos;
        return this;
    }

    @Override
    public DeviceInfo info() {
        return inner.info();
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        Fault fault;
        synchronized (this) {
            submitted++;
            Fault scripted = script.poll();
            fault = scripted != null ? scripted : defaultFault;
        }
        switch (fault) {
            case PASS -> inner.submit(op, offset, length, flags, buffer, tag, completion);
            case FAIL -> completion.onComplete(tag, IoStatus.EIO);
            case DUPLICATE -> inner.submit(op, offset, length, flags, buffer, tag, (t, s) -> {
                completion.onComplete(t, s);
                completion.onComplete(t, s);
            });
            case HOLD, DROP, DELAY -> {
                Request r = new Request(op, offset, length, flags, buffer, tag, completion, fault);
                synchronized (this) {
                    kept.add(r);
                }
                if (fault == Fault.DROP) {
                    // The storage executes it; only the answer is lost.
                    inner.submit(op, offset, length, flags, buffer, tag, (t, s) -> r.innerStatus = s);
                } else if (fault == Fault.DELAY) {
                    timer().schedule(() -> release(r), delayNanos, TimeUnit.NANOSECONDS);
                }
            }
            default -> throw new IllegalStateException(fault.toString());
        }
    }

    private synchronized ScheduledExecutorService timer() {
        if (timer == null) {
            timer = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "weft-fault-delay-" + name);
                t.setDaemon(true);
                return t;
            });
        }
        return timer;
    }

    /** Held (or delayed) requests not yet released or cancelled, oldest first; dropped ones are not listed. */
    public synchronized List<Request> held() {
        List<Request> out = new ArrayList<>();
        for (Request r : kept) {
            if (r.fault != Fault.DROP) {
                out.add(r);
            }
        }
        return out;
    }

    /** Requests whose answer was dropped and not cancelled yet. */
    public synchronized int droppedCount() {
        int n = 0;
        for (Request r : kept) {
            n += r.fault == Fault.DROP ? 1 : 0;
        }
        return n;
    }

    /**
     * Executes a held request now on the inner device (its buffer is read or written now) and completes it.
     *
     * @return false if it was no longer held (cancelled or released already)
     */
    public boolean release(Request r) {
        synchronized (this) {
            if (!kept.remove(r)) {
                return false;
            }
        }
        inner.submit(r.op, r.offset, r.length, r.flags, r.buffer, r.tag, r.completion);
        return true;
    }

    /** Releases one held request chosen by {@code random} (reordering); false if none is held. */
    public boolean releaseOne(Random random) {
        List<Request> h = held();
        return !h.isEmpty() && release(h.get(random.nextInt(h.size())));
    }

    /** Releases every held request in arrival order; returns how many. */
    public int releaseAll() {
        int n = 0;
        for (Request r : held()) {
            n += release(r) ? 1 : 0;
        }
        return n;
    }

    /**
     * Answers every dropped request after all, with the status the inner device gave it: a lost answer that arrives
     * late. (One the inner device has not answered yet stays dropped.)
     */
    public int answerDropped() {
        List<Request> dropped = new ArrayList<>();
        synchronized (this) {
            for (Request r : kept) {
                if (r.fault == Fault.DROP && r.innerStatus != Integer.MIN_VALUE) {
                    dropped.add(r);
                }
            }
            kept.removeAll(dropped);
        }
        for (Request r : dropped) {
            r.completion.onComplete(r.tag, r.innerStatus);
        }
        return dropped.size();
    }

    @Override
    public void cancel(long tag, IoCompletion completion) {
        Request found = null;
        synchronized (this) {
            cancelsAsked++;
            for (Request r : kept) {
                if (r.tag == tag && r.completion == completion) {
                    found = r;
                    break;
                }
            }
            if (found != null && cancelAnswer == CancelAnswer.ANSWER) {
                kept.remove(found);
                cancelsAnswered++;
            } else if (found != null) {
                return; // told to ignore it: the request stays held or dropped
            }
        }
        if (found != null) {
            found.completion.onComplete(found.tag, IoStatus.ECANCELED);
        } else {
            inner.cancel(tag, completion);
        }
    }

    public synchronized long submitted() {
        return submitted;
    }

    public synchronized long cancelsAsked() {
        return cancelsAsked;
    }

    public synchronized long cancelsAnswered() {
        return cancelsAnswered;
    }

    @Override
    public long describeExtents(long offset, long length, ExtentConsumer consumer) {
        return inner.describeExtents(offset, length, consumer);
    }

    /** Closes the inner device and the timer; kept requests stay kept (a dead link answers nothing). */
    @Override
    public void close() {
        synchronized (this) {
            if (timer != null) {
                timer.shutdownNow();
            }
        }
        inner.close();
    }

    @Override
    public String toString() {
        return name;
    }
}
