package io.weft.cxl;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoRequests;
import io.weft.core.io.IoStatus;
import io.weft.cxl.CxlRegion.Table;
import io.weft.cxl.layout.MetaEntry;
import io.weft.cxl.layout.Records;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.agrona.concurrent.AgentInvoker;
import org.agrona.concurrent.BusySpinIdleStrategy;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Client side of a backend: a {@link BlockDevice} whose requests travel through the backend's channels in the shared
 * region. WRITE payloads are copied into the request's data slot at submit, READ payloads are copied out when the
 * completion arrives (one copy per hop); completions are consumed by a completion agent — one of the process's
 * shared {@link CompletionAgent} threads, not one per blkdev, or the caller's thread through {@link #invoker()} — and,
 * when opened with {@link BlkdevOptions#submitterAssists()}, also by the submitting thread right after it publishes
 * (one consumer at a time per channel). A submitting thread is mapped to a channel by its thread id, so threads that
 * each own a queue never contend. Nothing is allocated per request.
 */
public final class CxlBlockDevice implements BlockDevice {
    private final CxlHost host;
    private final int slot;
    private final long token;
    private final MetaEntry entry;
    private final int backendId;
    private final DeviceInfo info;
    private final ClientChannel[] channels;
    /** This blkdev's completion work, run by {@link #agent}. */
    private final BlkdevCompletions completions;
    /** The process's shared completion agent serving this blkdev, or (invoker mode) a private one. */
    private final CompletionAgent agent;
    private final AgentInvoker invoker;
    /** Negative: the submitter never delivers completions; else how long it waits for a lone request of its own. */
    private final long submitterWaitNs;
    private final long submitterSpinNs;
    private final long beatIntervalNs;
    private final long ioTimeoutNs;
    private volatile int refuseStatus;
    private boolean closed;

    private CxlBlockDevice(CxlHost host, int slot, long token, int backendId, DeviceInfo info, ClientChannel[] channels,
                           BlkdevOptions options) {
        this.host = host;
        this.slot = slot;
        this.token = token;
        this.entry = host.region().entry(Table.BLKDEV, slot);
        this.backendId = backendId;
        this.info = info;
        this.channels = channels;
        CxlOptions o = host.options();
        this.submitterWaitNs = options.submitterWaitNs();
        this.submitterSpinNs = options.submitterSpinNs();
        this.beatIntervalNs = o.heartbeatInterval().toNanos();
        this.ioTimeoutNs = o.ioTimeout().toNanos();
        this.completions = new BlkdevCompletions(channels, o.heartbeatInterval().toNanos(), o.ioTimeout().toNanos());
        if (options.useInvoker()) {
            this.agent = new CompletionAgent("cxl-blkdev-" + slot);
            agent.add(completions);
            this.invoker = new AgentInvoker(t -> System.err.println("cxl completion error: " + t), null, agent);
            invoker.start();
        } else {
            // One of the process's shared agents: no thread per blkdev. With nothing in flight on any of its blkdevs
            // it sleeps (re-checked after announcing); a submitter that leaves a request behind wakes it.
            this.invoker = null;
            this.agent = host.completionAgentFor(completions);
        }
    }

    static CxlBlockDevice open(CxlHost host, int backendId, BlkdevOptions options, byte[] capability) {
        CxlRegion region = host.region();
        MetaEntry backend = region.entry(Table.BACKEND, backendId);
        UnsafeBuffer body = new UnsafeBuffer(new byte[MetaEntry.BODY_SIZE]);
        long backendClaim = backend.claim();
        if (backendClaim == 0 || backendClaim == MetaEntry.CLAIM_REVOKED || backend.read(body) < 0) {
            throw new IllegalStateException("backend " + backendId + " does not exist");
        }
        if (body.getInt(Records.BACKEND_STATE) != Records.STATE_RUNNING) {
            throw new IllegalStateException("backend " + backendId + " is "
                    + Records.stateName(body.getInt(Records.BACKEND_STATE)));
        }
        byte[] digest = new byte[Records.GRANT_DIGEST_LENGTH];
        body.getBytes(Records.BACKEND_GRANT_DIGEST, digest);
        if (!java.util.Arrays.equals(digest, new byte[Records.GRANT_DIGEST_LENGTH])
                && (capability == null
                        || !java.security.MessageDigest.isEqual(digest, CxlHost.grantDigest(capability)))) {
            throw new IllegalStateException("backend " + backendId + " is granted to another client: "
                    + (capability == null ? "no capability presented" : "the capability presented does not match"));
        }
        int caps = body.getInt(Records.BACKEND_CAPS);
        int lbs = body.getInt(Records.BACKEND_LOGICAL_BLOCK);
        // Bounded by local geometry: a request longer than a data slot cannot travel, whatever the record says.
        int maxIo = Math.min(body.getInt(Records.BACKEND_MAX_IO), region.geometry().slotSize());
        DeviceInfo info;
        try {
            int preferred = Math.min(Math.max(4096, lbs), maxIo);
            info = DeviceInfo.fromCapabilityBits(body.getLong(Records.BACKEND_SIZE), lbs, preferred, maxIo, caps);
        } catch (IllegalArgumentException e) {
            throw new IllegalStateException("backend " + backendId + " has an invalid geometry: " + e.getMessage());
        }
        int available = body.getInt(Records.BACKEND_CHANNELS);
        if (available < 1 || available > Records.MAX_CHANNELS_PER_BACKEND) {
            throw new IllegalStateException("backend " + backendId + " record lists " + available + " channels");
        }
        int queues = options.queues() == 0 ? available : Math.min(options.queues(), available);
        long token = CxlHost.newToken();
        int slot = -1;
        for (int s = 0; s < region.tableSize(Table.BLKDEV); s++) {
            MetaEntry e = region.entry(Table.BLKDEV, s);
            if (e.claim() == 0 && e.casClaim(0, token)) {
                e.wipeRecords();
                slot = s;
                break;
            }
        }
        if (slot < 0) {
            int size = region.tableSize(Table.BLKDEV);
            throw RegionFullException.of(region, "blkdevs", size, 1, size);
        }
        List<ChannelSegment> claimed = new ArrayList<>();
        try {
            for (int c = 0; c < queues; c++) {
                int seg = body.getInt(Records.BACKEND_SEGMENTS + 4 * c);
                if (seg < 0 || seg >= region.geometry().segmentCount()) {
                    throw new IllegalStateException("backend " + backendId + " lists segment " + seg);
                }
                ChannelSegment ch = region.channel(seg);
                if (!ch.casClientClaim(0, token)) {
                    throw new IllegalStateException("channel " + c + " (segment " + seg + ") of backend " + backendId
                            + " is held by another blkdev; clear it if it is dead");
                }
                claimed.add(ch);
            }
        } catch (RuntimeException e) {
            for (ChannelSegment ch : claimed) {
                ch.casClientClaim(token, 0);
            }
            region.entry(Table.BLKDEV, slot).casClaim(token, 0);
            throw e;
        }
        long now = System.nanoTime();
        ClientChannel[] channels = new ClientChannel[queues];
        for (int c = 0; c < queues; c++) {
            channels[c] = new ClientChannel(claimed.get(c), token, now, region::doorbellAddress);
        }
        MetaEntry e = region.entry(Table.BLKDEV, slot);
        writeRecord(e, backendId, host, queues, Records.STATE_RUNNING);
        host.own(e, token);
        return new CxlBlockDevice(host, slot, token, backendId, info, channels, options);
    }

    private static void writeRecord(MetaEntry e, int backendId, CxlHost host, int queues, int state) {
        UnsafeBuffer body = new UnsafeBuffer(new byte[MetaEntry.BODY_SIZE]);
        body.putInt(Records.BLKDEV_BACKEND_SLOT, backendId);
        body.putInt(Records.BLKDEV_HOST_SLOT, host.slot());
        body.putInt(Records.BLKDEV_QUEUES, queues);
        body.putInt(Records.BLKDEV_STATE, state);
        body.putLong(Records.BLKDEV_NODE_ID, host.nodeId());
        e.write(body);
    }

    @Override
    public DeviceInfo info() {
        return info;
    }

    /** Blkdev id = its slot in the blkdev table. */
    public int id() {
        return slot;
    }

    public int backendId() {
        return backendId;
    }

    public int queueCount() {
        return channels.length;
    }

    /** The caller-driven completion poller when opened with {@link BlkdevOptions#useInvoker()}, else null. */
    public AgentInvoker invoker() {
        return invoker;
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        int status = IoRequests.check(info, op, offset, length, flags);
        if (status == IoStatus.OK && (op == IoOp.READ || op == IoOp.WRITE)
                && (buffer == null || buffer.remaining() < length)) {
            status = IoStatus.EINVAL;
        }
        if (status == IoStatus.OK && refuseStatus != 0) {
            status = refuseStatus;
        }
        if (status == IoStatus.OK) {
            ClientChannel channel = channels[(int) (Thread.currentThread().getId() % channels.length)];
            status = channel.submit(op, offset, length, flags, buffer, tag, completion);
            if (status >= 0 && refuseStatus != 0) {
                // Closed (or force-stopped) by its owner while this request waited for room inside submit: the
                // close is the reason, not the claim it released on the way (which reads like a lost channel, EIO).
                status = refuseStatus;
            }
            if (status < 0) {
                // Deliver what is ready, never wait here: a caller with more requests to submit (an NBD reader with
                // a pipeline of them) must not be held up by this one; it waits in awaitCompletions when it has
                // nothing left to submit.
                if (submitterWaitNs >= 0 && channel.tryConsume()) {
                    try {
                        channel.assist(0, 0, beatIntervalNs, ioTimeoutNs, false);
                    } finally {
                        channel.releaseConsumer();
                    }
                    if (channel.inFlight() == 0) {
                        return; // everything this queue had is delivered: nothing to wake the agent for
                    }
                }
                agent.wake(); // only after an idle spell: no syscall on a busy path
                return;
            }
        }
        completion.onComplete(tag, status);
    }

    /**
     * Completes the request submitted with {@code tag} and {@code completion} with ECANCELED at once if it is still
     * in flight (see {@link BlockDevice#cancel}): its slot stays the backend's until the backend answers, and that
     * answer is then consumed without touching the caller's buffer. A request that already completed: no effect.
     * Any thread; scans the channels' slots (a control-path operation, no allocation).
     */
    @Override
    public void cancel(long tag, IoCompletion completion) {
        for (ClientChannel c : channels) {
            if (c.cancel(tag, completion)) {
                return;
            }
        }
    }

    /**
     * With submitter assistance ({@link BlkdevOptions#submitterAssists}): delivers the calling thread's channel's
     * ready completions and, while some are outstanding and none was delivered, waits up to the shorter of
     * {@code maxWaitNanos} and the options' submitter wait (polling, then asleep on the client doorbell).
     */
    @Override
    public void awaitCompletions(long maxWaitNanos) {
        if (submitterWaitNs < 0 || closed) {
            return;
        }
        ClientChannel channel = channels[(int) (Thread.currentThread().getId() % channels.length)];
        if (channel.inFlight() == 0 || !channel.tryConsume()) {
            return;
        }
        try {
            channel.assist(Math.min(maxWaitNanos, submitterWaitNs), submitterSpinNs, beatIntervalNs, ioTimeoutNs,
                    true);
        } finally {
            channel.releaseConsumer();
        }
        if (channel.inFlight() > 0) {
            agent.wake(); // the rest is the agent's again
        }
    }

    /** True while the backend's handler heartbeat on every channel has moved within the dead timeout. */
    public boolean backendAlive() {
        long now = System.nanoTime();
        long timeout = host.options().deadTimeout().toNanos();
        for (ClientChannel c : channels) {
            if (!c.backendAlive(now, timeout)) {
                return false;
            }
        }
        return true;
    }

    /** Requests submitted and not yet completed, over all queues. */
    public long inFlight() {
        long n = 0;
        for (ClientChannel c : channels) {
            n += c.inFlight();
        }
        return n;
    }

    /** Per queue: null while healthy, else why the queue fails requests (fence, stop, timeout). */
    public List<String> failures() {
        List<String> out = new ArrayList<>();
        for (ClientChannel c : channels) {
            out.add(c.failStatus() == 0 ? null : IoStatus.name(c.failStatus()) + ": " + c.failReason());
        }
        return out;
    }

    /** Completes every in-flight request with EIO at once, refuses new ones, and releases the blkdev. */
    public void forceStop() {
        shutdown(IoStatus.EIO, "force-stopped");
    }

    /** Releases the blkdev; requests still in flight complete with ESHUTDOWN. */
    @Override
    public void close() {
        shutdown(IoStatus.ESHUTDOWN, "closed");
    }

    private synchronized void shutdown(int status, String reason) {
        if (closed) {
            return;
        }
        closed = true;
        refuseStatus = status;
        completions.requestStop(status, reason);
        agent.wakeNow(); // it may be in a deep sleep
        long timeoutNs = host.options().deadTimeout().toNanos() * 5;
        long deadline = System.nanoTime() + timeoutNs;
        while (!completions.stopDone() && System.nanoTime() < deadline) {
            if (invoker != null) {
                invoker.invoke();
            } else {
                BusySpinIdleStrategy.INSTANCE.idle(); // the shared agent stops it; a wait with a deadline
            }
        }
        // Producers that raced the stop have published by now; one more duty cycle fails them too.
        if (invoker != null) {
            invoker.invoke();
            invoker.close();
        } else {
            // From here on no duty cycle of the shared agent touches these channels: they are ours to drain.
            host.releaseCompletionAgent(agent, completions, timeoutNs);
        }
        for (ClientChannel c : channels) {
            c.drainAfterAgent(status, reason);
            c.detach(token);
        }
        host.disown(entry, null, this);
        if (entry.claim() == token) { // revoked by a janitor while this process was paused: not ours any more
            writeRecord(entry, backendId, host, channels.length, Records.STATE_STOPPED);
            entry.wipeRecords();
            entry.casClaim(token, 0);
        }
    }

    /**
     * Why the first failed queue fails requests, or null while every queue is healthy. Allocates nothing while
     * healthy: a node's watcher polls every device several times a second.
     */
    public String firstFailure() {
        for (ClientChannel c : channels) {
            if (c.failStatus() != 0) {
                return IoStatus.name(c.failStatus()) + ": " + c.failReason();
            }
        }
        return null;
    }

    /** Channel states for diagnostics. */
    public List<String> describeChannels() {
        List<String> out = new ArrayList<>();
        for (ClientChannel c : channels) {
            out.add(c.segment().describe());
        }
        return out;
    }
}
