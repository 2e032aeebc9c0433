package io.weft.rdma.client;

import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.rdma.RdmaJvmSwitches;
import io.weft.rdma.protocol.DoorbellIdleStrategy;
import io.weft.rdma.protocol.Immediate;
import io.weft.rdma.protocol.RequestHeader;
import io.weft.rdma.verbs.CompletionHandler;
import io.weft.rdma.verbs.CompletionQueue;
import io.weft.rdma.verbs.VerbsConnection;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;
import org.agrona.BitUtil;
import org.agrona.MutableDirectBuffer;
import org.agrona.collections.IntArrayQueue;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.AgentRunner;
import org.agrona.concurrent.MessageHandler;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.ringbuffer.ManyToOneRingBuffer;
import org.agrona.concurrent.ringbuffer.RingBufferDescriptor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client queue: an agent that owns IO connection number {@code index} of every path. Submitters hand it permits
 * through a many-to-one ring buffer; it picks a path per request, writes the request header and posts one
 * write-with-immediate into the storage chunk of the same index, and completes requests from the status
 * immediates. No allocation, lock or log line per request.
 *
 * <p><b>Who runs the queue's work.</b> Everything below (the permit states, the path table, the completion queue's
 * connections) belongs to whoever holds the queue's {@link #driving} role, one thread at a time: the agent for each
 * duty cycle, or a submitter that finds the role free and posts its own request on its own thread (with whatever
 * else waits in the ring) instead of waking the agent. A submitter that leaves anything behind (unsent bytes, a
 * request without a path, a submission that arrived while it held the role) rings the agent's doorbell.
 * {@code -Dweft.rdma.inline-submit=false} hands every request to the agent instead (the behaviour before).
 *
 * <p><b>Submitter assist</b> ({@code weft.rdma.submitter-assist}, default on). A submitter about to block with
 * nothing more to submit ({@code BlockDevice.awaitCompletions}: an NBD reader whose socket has no buffered request)
 * whose request is the only one the session holds takes the role, if free, and waits for the answer itself: it
 * takes the completion queue's {@link DoorbellSeat} (sleeps where the agent would), reaps with the agent's own code
 * ({@link #poll}, {@link #onWriteWithImmediate}) and so completes its caller on its own thread — an NBD reader then
 * writes the reply inline, and neither the agent nor a writer thread is woken. It gives the role back, ringing the
 * agent, as soon as anything else needs it: a submission or cancel in the ring, a ring (path change, fence, close),
 * its request leaving INFLIGHT other than by its answer (connection failed: FENCING), or its wait cap
 * ({@code weft.rdma.submitter-assist-max-wait-us}, default 1000). Past the request's deadline it runs the io-timeout
 * scan itself. Otherwise the agent reaps answers, expires requests and parks.
 *
 * <p>Ownership of a permit (its local chunk, the storage chunk of the same index and the caller's buffer), all
 * state of the role holder:
 * <pre>
 *   FREE ──submit──► QUEUED ──post──► INFLIGHT ──answer──► FREE (caller completed; a READ's data copied first)
 *                      │                 │
 *                      │ cancel/expire   │ its connection retired (path failed, removed, request timed out)
 *                      ▼                 ▼
 *                    FREE             FENCING ──storage acknowledged the fence of that connection──► QUEUED
 * </pre>
 * A request given up while INFLIGHT or FENCING (cancel, io-timeout) completes its caller at once and becomes
 * <i>abandoned</i>: its buffer is never touched again, but the permit stays reserved until nothing can land in its
 * chunks any more — its answer arrived (and was dropped) or the storage side acknowledged the fence of the
 * connection it was posted on. A permit is never reused, and a request never posted again, while the storage side
 * may still execute an earlier post of it: that is what keeps a retried WRITE from landing after a newer one.
 *
 * <p>Over 600 lines on purpose: posting, answering, failover and expiry all read and write the same role-owned
 * permit arrays in one thread at a time; split across classes they would have to be shared fields again (what
 * {@link RequestTable} removed for the caller-facing slots).
 */
final class ClientQueue implements Agent, CompletionHandler, MessageHandler {
    private static final Logger LOG = LoggerFactory.getLogger(ClientQueue.class);
    private static final int FREE = 0;
    private static final int QUEUED = 1;
    private static final int INFLIGHT = 2;
    /** Posted on a retired connection: waits for the storage side to acknowledge that connection's fence. */
    private static final int FENCING = 3;
    private static final UnsafeBuffer EMPTY = new UnsafeBuffer(new byte[8]);
    /**
     * Ring message types: {@code permit + 1} submits; {@code CANCEL_BASE + permit} (payload: use u64, status u32)
     * gives a request up (cancel: ECANCELED; its device closed: ESHUTDOWN).
     */
    private static final int CANCEL_BASE = 1 << 20;
    private static final int CANCEL_LENGTH = 12;
    /** Submitters post their own requests when the queue is idle ({@code weft.rdma.inline-submit}, default on). */
    static final boolean INLINE_SUBMIT =
            Boolean.parseBoolean(System.getProperty(RdmaJvmSwitches.INLINE_SUBMIT, "true"));
    /** A submitter alone in flight waits for its own answer ({@code weft.rdma.submitter-assist}, default on). */
    static final boolean SUBMITTER_ASSIST = INLINE_SUBMIT
            && Boolean.parseBoolean(System.getProperty(RdmaJvmSwitches.SUBMITTER_ASSIST, "true"));
    /**
     * Polls of the completion queue before the assisting submitter sleeps on it ({@code
     * weft.rdma.submitter-assist-polls}, default 0: on a shared machine spinning starves the storage side, see
     * DoorbellIdleStrategy).
     */
    static final int ASSIST_POLLS = Integer.getInteger(RdmaJvmSwitches.SUBMITTER_ASSIST_POLLS, 0);
    /**
     * Longest wait of an assisting submitter before it hands its request back to the agent. Not final: tests that
     * must act while a submitter waits raise it (the request is then handed back by their cancel or ring, not by it).
     */
    static volatile long assistMaxWaitNanos =
            TimeUnit.MICROSECONDS.toNanos(Long.getLong(RdmaJvmSwitches.SUBMITTER_ASSIST_MAX_WAIT_US, 1000));

    private final RdmaSession session;
    private final RequestTable requests;
    final int index;
    final CompletionQueue cq;
    /** Where the agent, or an assisting submitter, sleeps until answers arrive. */
    private final DoorbellSeat doorbell;
    /** Role holder: the permit an assisting submitter waits for. */
    private int assisted;
    /** The thread that last waited for its lone request here (an NBD reader, say): it will wait for the next. */
    private volatile Thread assister;
    private final BooleanSupplier pollWhileSeatTaken = this::pollWhileSeatTaken;
    private final BooleanSupplier submissionsWaiting = this::hasSubmissions;
    private final ManyToOneRingBuffer submissions;
    private final IntArrayQueue pending;
    private final int[] state;
    private final int[] pathOf;
    /** The caller was already completed (cancel, io-timeout): drop the answer, keep the permit until it is safe. */
    private final boolean[] abandoned;
    /** Generation of the connection a FENCING permit was posted on. */
    private final long[] fenceGeneration;
    /** A cancel that overtook its submission in the ring: the use it names, or -1. */
    private final long[] cancelBeforeSubmit;
    /** The status that early cancel completes with. */
    private final int[] cancelStatus;
    private long seenFenceAcks;
    private final RequestHeader header = new RequestHeader();
    private final UnsafeBuffer localView;
    private final PathPolicy policy;

    // per path slot, agent-owned
    private final ClientPath[] paths = new ClientPath[RdmaSession.MAX_PATHS];
    private final VerbsConnection[] connections = new VerbsConnection[RdmaSession.MAX_PATHS];
    private final long[] generations = new long[RdmaSession.MAX_PATHS];
    private final boolean[] usable = new boolean[RdmaSession.MAX_PATHS];
    private final int[] inflight = new int[RdmaSession.MAX_PATHS];
    private final long[] rtt = new long[RdmaSession.MAX_PATHS];
    private int lastPath = -1;
    private long sequence;
    private long nextTimeoutScan;
    private AgentRunner runner;
    volatile Thread thread;
    /**
     * Parks on {@link #cq}; the bound on a park only matters for the io-timeout scan, so it is short while requests
     * are held and long when none is (an idle session costs no wake-ups per device or per 10 ms).
     */
    private final DoorbellIdleStrategy idle;
    /**
     * The right to run this queue's work: taken by the agent for each duty cycle or by a submitter posting inline.
     * Taking it (CAS) and giving it back (volatile write) order what one holder did before the next one reads it.
     */
    private final AtomicBoolean driving = new AtomicBoolean();
    /** The thread holding {@link #driving}, or null. */
    private volatile Thread driver;
    /** Agent: when it last parked with requests held. */
    private long lastBusyNanos = System.nanoTime() - 2 * DoorbellIdleStrategy.IDLE_MAX_PARK_NANOS;
    /** The agent's last park was the long one (nothing held for a while). */
    private volatile boolean parkedLong;

    ClientQueue(RdmaSession session, int index, CompletionQueue cq, PathPolicy policy) {
        this.session = session;
        this.requests = session.requests;
        this.index = index;
        this.cq = cq;
        this.doorbell = new DoorbellSeat(cq);
        this.policy = policy;
        int permits = session.queueDepth;
        int capacity = BitUtil.findNextPositivePowerOfTwo(Math.max(1024, permits * 32));
        this.submissions = new ManyToOneRingBuffer(new UnsafeBuffer(
                ByteBuffer.allocateDirect(capacity + RingBufferDescriptor.TRAILER_LENGTH)));
        this.pending = new IntArrayQueue(Math.max(IntArrayQueue.MIN_CAPACITY, permits), -1);
        this.state = new int[permits];
        this.pathOf = new int[permits];
        this.abandoned = new boolean[permits];
        this.fenceGeneration = new long[permits];
        this.cancelBeforeSubmit = new long[permits];
        java.util.Arrays.fill(cancelBeforeSubmit, -1);
        this.cancelStatus = new int[permits];
        this.localView = new UnsafeBuffer(session.localPool);
        java.util.Arrays.fill(generations, -1);
        // A submission waiting while a submitter holds the role is that submitter's to post (it rings if it leaves
        // one behind): the agent parks rather than spin on the role.
        this.idle = new DoorbellIdleStrategy(doorbell, () -> !driving.get() && submissions.size() > 0,
                this::maxParkNanos);
    }

    void start() {
        runner = new AgentRunner(idle, e -> LOG.error("client queue {} of session '{}' failed", index, session.name, e),
                null, this);
        AgentRunner.startOnThread(runner, r -> {
            Thread t = new Thread(r, "weft-rdma-client-" + session.name + "-q" + index);
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * Agent, at each park: short (the io-timeout scan) while requests are held and for a while after, so requests
     * that submitters post inline are scanned on time without waking the agent; long once the queue has been idle
     * that while. A submitter that posts while the agent is parked long rings it ({@link #postInline}).
     */
    private long maxParkNanos() {
        parkedLong = true; // before the look at the permits: a submitter taking one after that look sees it and rings
        long now = System.nanoTime();
        if (session.permits.inUse() > 0) {
            lastBusyNanos = now;
        }
        if (now - lastBusyNanos <= DoorbellIdleStrategy.IDLE_MAX_PARK_NANOS) {
            parkedLong = false;
            return DoorbellIdleStrategy.BUSY_MAX_PARK_NANOS;
        }
        return DoorbellIdleStrategy.IDLE_MAX_PARK_NANOS;
    }

    /** Any thread: something the agent acts on changed (a path, a device, a fence); it runs a duty cycle soon. */
    void ring() {
        idle.ring();
    }

    /**
     * Any thread: hands a filled permit to this queue. When nobody runs the queue's work the caller posts it itself
     * ({@link #postInline}); otherwise the current holder or the agent (rung) takes it from the ring.
     */
    void submit(int permit) {
        while (!submissions.write(permit + 1, EMPTY, 0, 0)) {
            Thread.yield(); // cannot stay full: it holds more records than there are permits
        }
        if (!postInline()) {
            idle.ring();
        }
    }

    /**
     * Submitter: if the role is free, takes it and runs the posting half of a duty cycle on this thread — adopt path
     * changes and fences, read the ring, post, push the bytes out. @return false when someone else holds the role
     */
    private boolean postInline() {
        return INLINE_SUBMIT && driveInline(-1);
    }

    /**
     * A submitter with nothing more to submit ({@code BlockDevice.awaitCompletions}): if the session's only request
     * in flight is this queue's and the role is free, waits for its answer on this thread ({@link #assist}) for at
     * most {@code maxWaitNanos}.
     */
    void assistLoneRequest(long maxWaitNanos) {
        if (SUBMITTER_ASSIST && session.permits.inUse() == 1) {
            driveInline(maxWaitNanos);
        }
    }

    /**
     * Submitter: takes the role if it is free, runs the posting half of a duty cycle (adopt path changes and fences,
     * read the ring, post, push the bytes out) and, with {@code assistNanos >= 0}, waits for the session's lone
     * request if it is this queue's. Rings the agent for whatever it leaves behind.
     */
    private boolean driveInline(long assistNanos) {
        if (!driving.compareAndSet(false, true)) {
            return false;
        }
        boolean ringAgent;
        Thread me = Thread.currentThread();
        driver = me;
        try {
            doorbell.clearRung(); // from here on, a ring (path change, fence, close) is this thread's to pass on
            refresh();
            submissions.read(this, session.queueDepth);
            dispatch();
            boolean leftBehind = cq.flush() || !pending.isEmpty();
            if (assistNanos >= 0 && !leftBehind && submissions.size() == 0 && session.permits.inUse() == 1) {
                int permit = loneInflight();
                if (permit >= 0) {
                    assister = me;
                    leftBehind = !assist(permit, Math.min(assistNanos, assistMaxWaitNanos));
                }
            }
            int held = session.permits.inUse();
            // What this thread could not finish, what arrived or rang while it held the role, and requests in flight
            // while the agent sleeps off the completion queue (it would not see their answers) — unless it is the
            // lone request of the thread that assists: that thread waits for it next (awaitCompletions), and the
            // agent's bounded park covers it if it does not.
            ringAgent = leftBehind || submissions.size() > 0 || doorbell.rung()
                    || SUBMITTER_ASSIST && held > 0 && !doorbell.agentSeated() && !(held == 1 && assister == me);
        } finally {
            driver = null;
            driving.set(false);
        }
        if (ringAgent || parkedLong) {
            // parkedLong: the agent must scan the new request's deadline.
            idle.ring();
        }
        return true;
    }

    /** Role holder: this queue's one INFLIGHT request whose caller still waits, or -1 (none, or more than one). */
    private int loneInflight() {
        int found = -1;
        for (int permit = index; permit < state.length; permit += session.queueCount) {
            if (state[permit] != FREE) {
                if (found >= 0 || state[permit] != INFLIGHT || abandoned[permit]) {
                    return -1;
                }
                found = permit;
            }
        }
        return found;
    }

    /**
     * Role holder, a submitter whose request {@code permit} is the only one in flight: polls, then sleeps on the
     * completion queue's seat, reaping what arrives, until the request is no longer INFLIGHT or something else needs
     * the role (see the class comment). @return true when the request is done (answered or given up here); false
     * when the agent must take it on (it is still in flight or FENCING)
     */
    private boolean assist(int permit, long maxWaitNanos) {
        long until = System.nanoTime() + maxWaitNanos;
        assisted = permit;
        for (int i = 0; i < ASSIST_POLLS && assistGoesOn(); i++) {
            cq.poll(this, 64);
        }
        if (assistGoesOn() && doorbell.take(until, pollWhileSeatTaken)) {
            try {
                while (assistGoesOn()) {
                    long now = System.nanoTime();
                    long deadline = requests.deadline(permit);
                    if (now - deadline > 0) {
                        expire(now);
                        break;
                    }
                    if (now - until >= 0) {
                        break;
                    }
                    long bound = deadline - until < 0 ? deadline : until;
                    doorbell.sleep(bound - now, submissionsWaiting);
                    cq.poll(this, 64);
                }
            } finally {
                doorbell.leave();
            }
        }
        return state[permit] == FREE || abandoned[permit];
    }

    /**
     * Assisting submitter: its request is posted, its caller still waits for the answer and nothing else needs the
     * role.
     */
    private boolean assistGoesOn() {
        int permit = assisted;
        return state[permit] == INFLIGHT && !abandoned[permit] && submissions.size() == 0 && !doorbell.rung();
    }

    private boolean hasSubmissions() {
        return submissions.size() > 0;
    }

    /** Assisting submitter while the agent leaves the seat: the answer may come first. */
    private boolean pollWhileSeatTaken() {
        cq.poll(this, 64);
        return assistGoesOn();
    }

    /** Is the calling thread running this queue's work now (a completion submitting again from inside it)? */
    boolean isDriver(Thread t) {
        return driver == t;
    }

    /** Any thread: asks the agent to give up use {@code use} of {@code permit} with {@code status}. No allocation. */
    void enqueueCancel(int permit, long use, int status) {
        int at;
        while ((at = submissions.tryClaim(CANCEL_BASE + permit, CANCEL_LENGTH)) < 0) {
            Thread.yield(); // bounded like enqueue: space frees as the agent reads
        }
        submissions.buffer().putLong(at, use);
        submissions.buffer().putInt(at + 8, status);
        submissions.commit(at);
        idle.ring();
    }

    @Override
    public void onStart() {
        thread = Thread.currentThread();
    }

    @Override
    public int doWork() {
        if (!driving.compareAndSet(false, true)) {
            return 0; // a submitter is posting; it rings when it leaves work behind
        }
        driver = thread;
        try {
            return dutyCycle();
        } finally {
            driver = null;
            driving.set(false);
        }
    }

    /** Role holder: adopts path changes and acknowledged fences. */
    private int refresh() {
        int work = refreshPaths();
        long acks = session.fences.acks();
        if (acks != seenFenceAcks) {
            seenFenceAcks = acks;
            work += resolveFences();
        }
        return work;
    }

    private int dutyCycle() {
        int work = refresh();
        work += submissions.read(this, session.queueDepth);
        work += dispatch();
        work += cq.poll(this, 64);
        long now = System.nanoTime();
        if (now - nextTimeoutScan >= 0) {
            nextTimeoutScan = now + TimeUnit.MILLISECONDS.toNanos(10);
            work += expire(now);
        }
        return work;
    }

    @Override
    public void onMessage(int msgTypeId, MutableDirectBuffer buffer, int offset, int length) {
        if (msgTypeId >= CANCEL_BASE) {
            cancel(msgTypeId - CANCEL_BASE, buffer.getLong(offset), buffer.getInt(offset + 8));
            return;
        }
        int permit = msgTypeId - 1;
        abandoned[permit] = false;
        if (cancelBeforeSubmit[permit] == requests.use(permit)) {
            cancelBeforeSubmit[permit] = -1;
            state[permit] = QUEUED; // never posted: nothing can land anywhere
            finish(permit, cancelStatus[permit]);
            return;
        }
        cancelBeforeSubmit[permit] = -1;
        state[permit] = QUEUED;
        pending.addInt(permit);
    }

    /** Agent: the caller gives up on use {@code use} of {@code permit}, completing it with {@code status}. */
    private void cancel(int permit, long use, int status) {
        if (permit < 0 || permit >= state.length || requests.use(permit) != use) {
            return; // already completed and reused
        }
        switch (state[permit]) {
            case FREE:
                if (requests.holdsCaller(permit)) {
                    cancelBeforeSubmit[permit] = use; // the submission is still behind us in the ring
                    cancelStatus[permit] = status;
                }
                break;
            case QUEUED:
                finish(permit, status); // its stale entry in 'pending' is skipped
                break;
            default: // INFLIGHT, FENCING: the storage side may still answer into the chunk
                abandon(permit, status);
                break;
        }
    }

    /**
     * Completes the caller of a posted request now and forgets its buffer; the permit stays reserved (state
     * unchanged) until its answer arrives or its connection's fence is acknowledged.
     */
    private void abandon(int permit, int status) {
        if (abandoned[permit]) {
            return;
        }
        abandoned[permit] = true;
        complete(permit, status);
    }

    /** Adopts connections the control thread published and retires those of failed or removed paths. */
    private int refreshPaths() {
        int work = 0;
        for (int slot = 0; slot < paths.length; slot++) {
            ClientPath p = session.path(slot);
            if (p != paths[slot]) {
                if (paths[slot] != null) {
                    retire(slot, false);
                }
                paths[slot] = p;
                generations[slot] = -1;
                work++;
            }
            if (p == null) {
                continue;
            }
            if (p.state == PathState.CONNECTED) {
                long g = p.generation;
                if (g != generations[slot]) {
                    if (connections[slot] != null) {
                        retire(slot, false);
                    }
                    VerbsConnection[] io = p.io;
                    VerbsConnection c = io != null && index < io.length ? io[index] : null;
                    connections[slot] = c;
                    // The connection's own tag names its generation exactly (p.generation may already be newer).
                    generations[slot] = c != null && c.attachment() instanceof ClientPath.IoTag
                            ? ((ClientPath.IoTag) c.attachment()).generation() : g;
                    work++;
                }
            } else if (connections[slot] != null) {
                retire(slot, false);
                work++;
            }
        }
        return work;
    }

    /** Takes a path's connection out of service and requeues this queue's requests in flight on it. */
    private void retire(int slot, boolean reportToPath) {
        VerbsConnection c = connections[slot];
        connections[slot] = null;
        ClientPath p = paths[slot];
        if (c != null) {
            c.close();
        }
        long generation = generations[slot];
        boolean any = false;
        for (int permit = index; permit < state.length; permit += session.queueCount) {
            if (state[permit] == INFLIGHT && pathOf[permit] == slot) {
                // The storage side may still execute what was posted on that connection (frames on the wire, a
                // request on its device): post it again only once the storage side has fenced the connection.
                state[permit] = FENCING;
                fenceGeneration[permit] = generation;
                any = true;
                if (p != null) {
                    p.inflight.decrementAndGet();
                    if (!abandoned[permit]) {
                        p.failedOver.increment();
                    }
                }
            }
        }
        if (reportToPath && p != null) {
            p.reportFailure(generation, p.lastError);
        }
        if (any) {
            resolveFences(); // the fence may have been acknowledged before this agent noticed the failure
        }
    }

    /** Requeues (or frees, when abandoned) the FENCING permits whose connection's fence the storage acknowledged. */
    private int resolveFences() {
        int work = 0;
        for (int permit = index; permit < state.length; permit += session.queueCount) {
            if (state[permit] == FENCING && session.fences.isFenced(fenceGeneration[permit])) {
                if (abandoned[permit]) {
                    release(permit);
                } else {
                    state[permit] = QUEUED;
                    pending.addInt(permit);
                }
                work++;
            }
        }
        return work;
    }

    /**
     * Posts queued requests. A request whose device is not open in the current storage session yet (being opened
     * again after a reconnect) waits without holding up the others; one whose device failed or was closed completes
     * with ESHUTDOWN.
     */
    private int dispatch() {
        int work = 0;
        for (int n = pending.size(); n > 0 && !pending.isEmpty(); n--) {
            int permit = pending.pollInt();
            if (state[permit] != QUEUED) {
                continue; // completed by a timeout or cancel while it waited
            }
            RdmaBlockDevice device = requests.device(permit);
            if (!device.usable()) {
                finish(permit, IoStatus.ESHUTDOWN);
                work++;
                continue;
            }
            int deviceId = device.remoteId;
            int slot = deviceId < 0 ? -1 : choosePath();
            if (slot < 0 || !post(permit, slot, deviceId)) {
                pending.addInt(permit); // stays queued, behind the others
                if (deviceId >= 0) {
                    break; // no path or a full send queue: nothing else can go either
                }
                continue;
            }
            work++;
        }
        return work;
    }

    private int choosePath() {
        for (int s = 0; s < paths.length; s++) {
            ClientPath p = paths[s];
            boolean ok = p != null && connections[s] != null && p.state == PathState.CONNECTED;
            usable[s] = ok;
            if (ok) {
                inflight[s] = p.inflight.get();
                rtt[s] = p.rttNanos;
            }
        }
        int chosen = policy.choose(usable, inflight, rtt, paths.length, lastPath);
        if (chosen >= 0) {
            lastPath = chosen;
        }
        return chosen;
    }

    private boolean post(int permit, int slot, int deviceId) {
        ClientPath p = paths[slot];
        ClientPath.RemotePool remote = p.pool;
        IoOp op = requests.op(permit);
        int length = requests.length(permit);
        int base = permit * session.chunkSize;
        boolean read = op == IoOp.READ;
        header.wrap(localView, base).encode(op.ordinal(), requests.flags(permit), requests.offset(permit), length,
                deviceId, read ? session.localRegion.address() + base + RequestHeader.LENGTH : 0,
                read ? session.localRegion.rkey() : 0, read ? length : 0, ++sequence);
        int bytes = RequestHeader.LENGTH + (op == IoOp.WRITE ? length : 0);
        if (!connections[slot].postWriteWithImmediate(session.localRegion, base, bytes,
                remote.address() + (long) permit * remote.chunkSize(), remote.rkey(), Immediate.request(permit))) {
            return false;
        }
        state[permit] = INFLIGHT;
        pathOf[permit] = slot;
        p.inflight.incrementAndGet();
        return true;
    }

    @Override
    public void onWriteWithImmediate(VerbsConnection connection, long wrId, int immediate, int byteLength) {
        connection.postReceive(session.localRegion, 0, 0, 0);
        ClientPath.IoTag tag = (ClientPath.IoTag) connection.attachment();
        int permit = Immediate.chunk(immediate);
        if (Immediate.type(immediate) != Immediate.TYPE_RESPONSE || permit >= state.length
                || permit % session.queueCount != index) {
            session.malformedResponses.increment();
            connection.close(); // a storage side that answers garbage is not trusted further
            return;
        }
        if (state[permit] != INFLIGHT || pathOf[permit] != tag.slot() || generations[tag.slot()] != tag.generation()) {
            session.staleResponses.increment(); // answer to a request already retried elsewhere
            return;
        }
        ClientPath p = paths[tag.slot()];
        p.inflight.decrementAndGet();
        if (abandoned[permit]) {
            session.lateResponses.increment(); // its caller was completed already: never copy into its buffer
            release(permit);
            return;
        }
        int status = Immediate.status(immediate);
        if (status == IoStatus.OK && requests.op(permit) == IoOp.READ) {
            if (byteLength != requests.length(permit)) {
                status = IoStatus.EIO;
            } else {
                requests.deliverRead(permit, session.localPool, permit * session.chunkSize + RequestHeader.LENGTH);
            }
        }
        p.completed.increment();
        finish(permit, status);
    }

    /** Completes the caller and frees the permit (nothing can land in its chunks any more). */
    private void finish(int permit, int status) {
        long tag = requests.tag(permit);
        IoCompletion completion = requests.takeCompletion(permit);
        release(permit); // before the completion runs: a callback submitting again may take this permit
        call(completion, tag, status);
    }

    /** Completes the caller only; the buffer is forgotten before the completion runs. */
    private void complete(int permit, int status) {
        long tag = requests.tag(permit);
        IoCompletion completion = requests.takeCompletion(permit);
        call(completion, tag, status);
    }

    private void release(int permit) {
        abandoned[permit] = false;
        state[permit] = FREE;
        session.permits.release(permit);
    }

    private void call(IoCompletion completion, long tag, int status) {
        if (completion == null) {
            return;
        }
        try {
            completion.onComplete(tag, status);
        } catch (RuntimeException e) {
            LOG.warn("IO completion of session '{}' threw", session.name, e);
        }
    }

    @Override
    public void onReceive(VerbsConnection connection, long wrId, int byteLength) {
        session.malformedResponses.increment();
        connection.close();
    }

    @Override
    public void onError(VerbsConnection connection, int status, String reason) {
        Object a = connection.attachment();
        if (!(a instanceof ClientPath.IoTag)) {
            return;
        }
        ClientPath.IoTag tag = (ClientPath.IoTag) a;
        int slot = tag.slot();
        if (connections[slot] == connection && generations[slot] == tag.generation()) {
            ClientPath p = paths[slot];
            if (p != null) {
                p.lastError = "IO connection " + index + ": " + reason;
            }
            retire(slot, true);
        }
    }

    /**
     * Completes requests past their deadline with ETIMEDOUT. A queued one is freed; a posted one takes its connection
     * down (the path is failed and fenced) and stays reserved, abandoned, until its fence or its answer arrives.
     */
    private int expire(long now) {
        int work = 0;
        for (int permit = index; permit < state.length; permit += session.queueCount) {
            if (state[permit] == FREE || abandoned[permit] || now - requests.deadline(permit) <= 0) {
                continue;
            }
            if (state[permit] == QUEUED) {
                finish(permit, IoStatus.ETIMEDOUT);
            } else {
                if (state[permit] == INFLIGHT) {
                    int slot = pathOf[permit];
                    ClientPath p = paths[slot];
                    if (p != null) {
                        p.lastError = "request timed out after " + session.config.ioTimeout().toMillis() + " ms";
                    }
                    retire(slot, true);
                }
                abandon(permit, IoStatus.ETIMEDOUT);
            }
            work++;
        }
        return work;
    }

    /**
     * After the agent stopped and every connection of the session was closed (session close): completes every
     * caller not completed yet with {@code status}. Nothing is polled any more, so nothing lands in a buffer.
     */
    void failAll(int status) {
        while (!driving.compareAndSet(false, true)) {
            Thread.yield(); // a submitter finishing an inline post (short, bounded)
        }
        try {
            failAllHeld(status);
        } finally {
            driving.set(false);
        }
    }

    private void failAllHeld(int status) {
        submissions.read(this, Integer.MAX_VALUE);
        for (int permit = index; permit < state.length; permit += session.queueCount) {
            if (state[permit] != FREE) {
                if (abandoned[permit]) {
                    release(permit);
                } else {
                    finish(permit, status);
                }
            }
        }
    }

    @Override
    public String roleName() {
        return "weft-rdma-client-" + session.name + "-q" + index;
    }

    void stop() {
        if (runner != null) {
            idle.stop(); // a parked agent would otherwise keep the close waiting up to IDLE_MAX_PARK_NANOS
            runner.close();
        }
    }
}
