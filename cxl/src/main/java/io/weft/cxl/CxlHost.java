package io.weft.cxl;

import io.weft.core.io.BlockDevice;
import io.weft.cxl.CxlRegion.Table;
import io.weft.cxl.layout.ChannelLayout;
import io.weft.cxl.layout.MetaEntry;
import io.weft.cxl.layout.Records;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.locks.LockSupport;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.AgentRunner;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * This process's membership of a region: one host table entry plus a host agent that bumps the heartbeats of the host
 * and of every backend and blkdev this process owns, and watches everybody else's heartbeats with a
 * {@link LivenessTracker} (local monotonic clock only). Control-plane entry point:
 * {@link #createBackend}, {@link #reattachBackend}, {@link #openBlkdev}, {@link #clearDead}, {@link #status}.
 */
public final class CxlHost implements AutoCloseable {
    private static final SecureRandom RANDOM = new SecureRandom();

    private final CxlRegion region;
    private final CxlOptions options;
    private final long nodeId;
    private final String name;
    private final int slot;
    private final long token;
    private final MetaEntry entry;
    private final Map<Table, LivenessTracker> trackers = new EnumMap<>(Table.class);
    private final Map<Table, MetaEntry[]> watched = new EnumMap<>(Table.class);
    /** Entries this process owns, each with the claim token it must still hold for the host agent to beat it. */
    private final List<Owned> owned = new CopyOnWriteArrayList<>();
    private final List<CxlBackend> backends = new CopyOnWriteArrayList<>();
    private final List<CxlBlockDevice> blkdevs = new CopyOnWriteArrayList<>();
    private final AgentRunner runner;
    private final HostAgent hostAgent;
    /** Client side: the shared completion agents, started with the first blkdev (guarded by this). */
    private CompletionAgent[] completionAgents;
    /** Storage side: the shared handler agents, started with the first backend (guarded by this). */
    private HandlerAgent[] handlerAgents;
    private volatile boolean closed;

    private CxlHost(CxlRegion region, CxlOptions options, long nodeId, String name, int slot, long token) {
        this.region = region;
        this.options = options;
        this.nodeId = nodeId;
        this.name = name;
        this.slot = slot;
        this.token = token;
        this.entry = region.entry(Table.HOST, slot);
        for (Table t : List.of(Table.HOST, Table.BACKEND, Table.BLKDEV)) {
            trackers.put(t, new LivenessTracker(region.tableSize(t), options.deadTimeout().toNanos()));
            MetaEntry[] entries = new MetaEntry[region.tableSize(t)];
            for (int s = 0; s < entries.length; s++) {
                entries[s] = region.entry(t, s);
            }
            watched.put(t, entries);
        }
        owned.add(new Owned(entry, token));
        writeHostRecord(Records.STATE_RUNNING);
        observeAll(System.nanoTime());
        this.hostAgent = new HostAgent();
        // Sleeps until the next beat is due, not a quarter interval at a time: 10 wake-ups a second at the default
        // 100 ms instead of 40, the same beats (issue 12: a node's idle cost).
        this.runner = new AgentRunner(hostAgent.untilNextBeat, this::onAgentError, null, hostAgent);
        AgentRunner.startOnThread(runner);
        region.hostOpened(this);
    }

    /**
     * Registers this process as host {@code nodeId}. If an entry with the same node id exists (a restart of this
     * node), it is taken over once its heartbeat has been still for the dead timeout; a live one is refused. If a
     * peer clears that dead entry while this one watches it, the search starts again (a free slot is taken).
     */
    public static CxlHost register(CxlRegion region, long nodeId, String name, CxlOptions options) {
        long token = newToken();
        UnsafeBuffer body = new UnsafeBuffer(new byte[MetaEntry.BODY_SIZE]);
        int free = -1;
        for (int s = 0; s < region.tableSize(Table.HOST); s++) {
            MetaEntry e = region.entry(Table.HOST, s);
            long claim = e.claim();
            if (claim == 0) {
                if (free < 0) {
                    free = s;
                }
                continue;
            }
            if (claim == MetaEntry.CLAIM_REVOKED) {
                continue; // a janitor is clearing it: neither free nor anyone's
            }
            if (e.read(body) >= 0 && body.getLong(Records.HOST_NODE_ID) == nodeId) {
                if (!awaitSilent(e, options)) {
                    if (e.claim() != claim || e.heartbeat() == 0) {
                        // A peer's janitor cleared the dead entry while we watched it: it wipes the records (the
                        // heartbeat drops to 0, which a live owner's never does once it has beaten) and then releases
                        // the claim. Either sign means no live twin: look again (a wiped entry no longer matches).
                        return register(region, nodeId, name, options);
                    }
                    throw new IllegalStateException("node id " + nodeId + " is in use by a live host in slot " + s);
                }
                if (!e.casClaim(claim, token)) {
                    long now = e.claim();
                    if (now == 0 || now == MetaEntry.CLAIM_REVOKED) {
                        return register(region, nodeId, name, options); // cleared (or being cleared) by a peer
                    }
                    throw new IllegalStateException("host slot " + s + " changed owner while taking it over");
                }
                return new CxlHost(region, options, nodeId, name, s, token);
            }
        }
        for (int s = Math.max(free, 0); s < region.tableSize(Table.HOST); s++) {
            MetaEntry e = region.entry(Table.HOST, s);
            if (e.claim() == 0 && e.casClaim(0, token)) {
                return new CxlHost(region, options, nodeId, name, s, token);
            }
        }
        throw new IllegalStateException("host table full (" + region.tableSize(Table.HOST) + " entries)");
    }

    static long newToken() {
        long t;
        do {
            t = RANDOM.nextLong();
        } while (t == 0 || t == MetaEntry.CLAIM_REVOKED);
        return t;
    }

    /**
     * Watches an entry's heartbeat for one dead timeout (plus a heartbeat interval) by the local clock.
     *
     * @return true if it did not move (its owner is gone), false if it moved (alive)
     */
    static boolean awaitSilent(MetaEntry e, CxlOptions options) {
        long start = System.nanoTime();
        long first = e.heartbeat();
        long window = options.deadTimeout().plus(options.heartbeatInterval()).toNanos();
        long pollMs = Math.max(1, options.heartbeatInterval().toMillis() / 2);
        while (System.nanoTime() - start < window) {
            if (e.heartbeat() != first) {
                return false;
            }
            try {
                Thread.sleep(pollMs); // control path: sampling a peer's heartbeat at a fixed rate
            } catch (InterruptedException ex) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return e.heartbeat() == first;
    }

    public CxlRegion region() {
        return region;
    }

    public CxlOptions options() {
        return options;
    }

    public int slot() {
        return slot;
    }

    public long nodeId() {
        return nodeId;
    }

    public String name() {
        return name;
    }

    long token() {
        return token;
    }

    private void writeHostRecord(int state) {
        UnsafeBuffer body = new UnsafeBuffer(new byte[MetaEntry.BODY_SIZE]);
        body.putLong(Records.HOST_NODE_ID, nodeId);
        body.putInt(Records.HOST_STATE, state);
        Records.putString(body, Records.HOST_NAME, Records.HOST_NAME_MAX, name);
        entry.write(body);
    }

    /** Creates a backend serving {@code device} on fresh channels, to any blkdev in the region (no grant). */
    public CxlBackend createBackend(BlockDevice device, String storePath, BackendOptions backendOptions) {
        return createBackend(device, storePath, backendOptions, new byte[Records.GRANT_DIGEST_LENGTH]);
    }

    /**
     * Creates a backend that only a blkdev holding the capability whose SHA-256 is {@code grantDigest} opens (see
     * {@link #openBlkdev(int, BlkdevOptions, byte[])}). A cooperative check between Weft processes: anything that can
     * map the region can read and write all of it (docs/security.md, "Data plane").
     */
    public CxlBackend createBackend(BlockDevice device, String storePath, BackendOptions backendOptions,
                                    byte[] grantDigest) {
        CxlBackend backend = CxlBackend.create(this, device, storePath, backendOptions, grantDigest);
        backends.add(backend);
        return backend;
    }

    /** SHA-256 of a capability, as a backend record holds it. */
    public static byte[] grantDigest(byte[] capability) {
        try {
            return java.security.MessageDigest.getInstance("SHA-256").digest(capability);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 unavailable", e);
        }
    }

    /**
     * Re-attaches a backend of this node after a restart: waits until the previous owner's heartbeat is still, takes
     * over its entry and channels, and replays what was submitted but not completed.
     */
    public CxlBackend reattachBackend(int backendId, BlockDevice device, BackendOptions backendOptions) {
        CxlBackend backend = CxlBackend.reattach(this, backendId, device, backendOptions);
        backends.add(backend);
        return backend;
    }

    /** Opens a client block device on the channels of backend {@code backendId} (one without a grant). */
    public CxlBlockDevice openBlkdev(int backendId, BlkdevOptions blkdevOptions) {
        return openBlkdev(backendId, blkdevOptions, null);
    }

    /**
     * Opens a client block device on the channels of backend {@code backendId}, presenting {@code capability} (the
     * mapping's grant, or null): a backend with a grant digest opens only for the capability that hashes to it.
     */
    public CxlBlockDevice openBlkdev(int backendId, BlkdevOptions blkdevOptions, byte[] capability) {
        CxlBlockDevice dev = CxlBlockDevice.open(this, backendId, blkdevOptions, capability);
        blkdevs.add(dev);
        return dev;
    }

    /**
     * Assigns a blkdev's completions to the least loaded of this process's shared completion agents (starting them
     * with the first blkdev), so the number of completion threads is {@link CxlOptions#completionAgents()}, however
     * many blkdevs are open.
     */
    synchronized CompletionAgent completionAgentFor(BlkdevCompletions completions) {
        if (closed) {
            throw new IllegalStateException("host " + name + " is closed");
        }
        if (completionAgents == null) {
            completionAgents = new CompletionAgent[options.completionAgents()];
            for (int i = 0; i < completionAgents.length; i++) {
                completionAgents[i] = new CompletionAgent("cxl-completions-" + slot + "-" + i).start(options);
            }
        }
        CompletionAgent least = completionAgents[0];
        for (CompletionAgent a : completionAgents) {
            if (a.memberCount() < least.memberCount()) {
                least = a;
            }
        }
        least.add(completions);
        return least;
    }

    /**
     * Storage side: the {@code count} least loaded of this process's shared handler agents (starting them with the
     * first backend), over which a new backend spreads its channels.
     */
    synchronized HandlerAgent[] handlerAgentsFor(int count) {
        if (closed) {
            throw new IllegalStateException("host " + name + " is closed");
        }
        if (handlerAgents == null) {
            handlerAgents = new HandlerAgent[options.handlerAgents()];
            for (int i = 0; i < handlerAgents.length; i++) {
                handlerAgents[i] = new HandlerAgent("cxl-handlers-" + slot + "-" + i,
                        options.idleMaxPark().toNanos()).start(options);
            }
        }
        HandlerAgent[] byLoad = handlerAgents.clone();
        java.util.Arrays.sort(byLoad, java.util.Comparator.comparingInt(HandlerAgent::channelCount));
        return java.util.Arrays.copyOf(byLoad, Math.min(count, byLoad.length));
    }

    /** Takes a closing blkdev off its agent; returns once no duty cycle runs its channels any more. */
    void releaseCompletionAgent(CompletionAgent agent, BlkdevCompletions completions, long timeoutNs) {
        if (!agent.remove(completions, timeoutNs)) {
            System.err.println("cxl: completion agent " + agent.roleName() + " did not finish its duty cycle within "
                    + timeoutNs / 1_000_000 + " ms (a blocking callback?); closing the blkdev anyway");
        }
    }

    /** Agent threads this process runs in the region: completion agents, handler agents (tests, status). */
    public synchronized int agentThreads() {
        return (completionAgents == null ? 0 : completionAgents.length)
                + (handlerAgents == null ? 0 : handlerAgents.length);
    }

    void own(MetaEntry e, long claimToken) {
        owned.add(new Owned(e, claimToken));
    }

    void disown(MetaEntry e, CxlBackend backend, CxlBlockDevice blkdev) {
        owned.removeIf(o -> o.entry.address() == e.address());
        if (backend != null) {
            backends.remove(backend);
        }
        if (blkdev != null) {
            blkdevs.remove(blkdev);
        }
    }

    /** True when the object in {@code slot} is claimed and its heartbeat has been seen moving within the timeout. */
    public boolean isAlive(Table table, int slot) {
        if (region.entry(table, slot).claim() == 0) {
            return false;
        }
        return !trackers.get(table).isDead(slot, System.nanoTime());
    }

    /**
     * Storage side: when the client of backend {@code backendId} was last heard, by this host's clock: the newest
     * observed heartbeat change of any claimed blkdev opened on that backend (their owner's host agent beats them every
     * heartbeat interval while the process runs; a paused or dead client's stay still). Observation happens once per
     * heartbeat interval, so the answer lags the real beat by at most that. Control path (the storage node's lease
     * check): a blkdev's record is read once per claim (its backend slot does not change while the claim holds) and
     * remembered with it, so a check costs a pass over the claims, not over the records.
     *
     * @return a System.nanoTime value, or {@link #NEVER_HEARD} when no blkdev of that backend was observed
     */
    public long blkdevLastHeardNanos(int backendId) {
        LivenessTracker tracker = trackers.get(Table.BLKDEV);
        MetaEntry[] entries = watched.get(Table.BLKDEV);
        long now = System.nanoTime();
        long newest = NEVER_HEARD;
        synchronized (blkdevReads) { // not this host's lock: clearDead holds that through its grace period
            for (int s = 0; s < entries.length; s++) {
                long claim = entries[s].claim();
                if (claim == 0 || claim == MetaEntry.CLAIM_REVOKED || blkdevBackend(s, claim) != backendId) {
                    continue;
                }
                long silent = tracker.silentForNs(s, now);
                if (silent >= 0 && (newest == NEVER_HEARD || (now - silent) - newest > 0)) {
                    newest = now - silent;
                }
            }
        }
        return newest;
    }

    private final Object blkdevReads = new Object();
    /** Per blkdev slot: the claim its backend slot was read under, and that slot. Guarded by blkdevReads. */
    private long[] blkdevClaimRead;
    private int[] blkdevBackendRead;

    /** The backend slot of the blkdev in {@code slot} under {@code claim}, read from its record once per claim. */
    private int blkdevBackend(int slot, long claim) {
        if (blkdevClaimRead == null) {
            blkdevClaimRead = new long[region.tableSize(Table.BLKDEV)];
            blkdevBackendRead = new int[blkdevClaimRead.length];
        }
        if (blkdevClaimRead[slot] != claim) {
            UnsafeBuffer body = new UnsafeBuffer(new byte[MetaEntry.BODY_SIZE]);
            MetaEntry e = region.entry(Table.BLKDEV, slot);
            // A new owner claims, wipes, then writes its record: until then (or if it changed owner meanwhile)
            // nothing is remembered, and the next check reads again.
            if (e.read(body) < 0 || e.claim() != claim) {
                return -1;
            }
            blkdevClaimRead[slot] = claim;
            blkdevBackendRead[slot] = body.getInt(Records.BLKDEV_BACKEND_SLOT);
        }
        return blkdevBackendRead[slot];
    }

    /** {@link #blkdevLastHeardNanos}: no client was observed. */
    public static final long NEVER_HEARD = Long.MIN_VALUE;

    /** True once the object has been observed with a still heartbeat for at least the dead timeout. */
    public boolean isDead(Table table, int slot) {
        return region.entry(table, slot).claim() != 0 && trackers.get(table).isDead(slot, System.nanoTime());
    }

    /**
     * Clears a dead host, backend or blkdev: frees its entry and (backend) its channel segments or (blkdev) its channel
     * claims. Refused while the object is alive or not yet observed dead for the full timeout.
     *
     * <p>In two steps, because "dead" may only mean paused (GC, SIGSTOP): first every claim of the object is revoked
     * (its token replaced by {@link MetaEntry#CLAIM_REVOKED}, which fails the owner's claim checks at once and which
     * nobody can take), then, after a grace period of one heartbeat interval — far longer than any publish between an
     * owner's claim check and its store (a slot copy and a few stores: microseconds) — the records are wiped and the
     * claims set free. An owner that resumes after that finds its claim gone at its next check and writes nothing;
     * only one paused exactly between a check and its store for longer than the grace can still land one store
     * (docs/cxl.md, "Claims").
     */
    public synchronized void clearDead(Table table, int slot) {
        if (table == Table.SEGMENT) {
            throw new IllegalArgumentException("segments are cleared with their backend");
        }
        MetaEntry e = region.entry(table, slot);
        long claim = e.claim();
        if (claim == 0 || claim == MetaEntry.CLAIM_REVOKED) {
            return;
        }
        LivenessTracker tracker = trackers.get(table);
        long now = System.nanoTime();
        if (!tracker.isDead(slot, now)) {
            long silent = tracker.silentForNs(slot, now);
            throw new IllegalStateException(table + " " + slot + " is alive (heartbeat silent for "
                    + (silent < 0 ? "unknown" : silent / 1_000_000 + " ms") + ", timeout "
                    + options.deadTimeout().toMillis() + " ms): refusing to clear");
        }
        UnsafeBuffer body = new UnsafeBuffer(new byte[MetaEntry.BODY_SIZE]);
        boolean readable = e.read(body) >= 0;
        if (!e.casClaim(claim, MetaEntry.CLAIM_REVOKED)) {
            return; // another janitor (or a takeover) got there first
        }
        // Step 1: revoke every claim the dead owner holds.
        List<MetaEntry> segments = new ArrayList<>();
        List<ChannelSegment> channels = new ArrayList<>();
        if (table == Table.BACKEND && readable) {
            int count = Math.min(body.getInt(Records.BACKEND_CHANNELS), Records.MAX_CHANNELS_PER_BACKEND);
            for (int c = 0; c < count; c++) {
                int seg = body.getInt(Records.BACKEND_SEGMENTS + 4 * c);
                if (seg >= 0 && seg < region.geometry().segmentCount()) {
                    MetaEntry segEntry = region.entry(Table.SEGMENT, seg);
                    if (segEntry.casClaim(claim, MetaEntry.CLAIM_REVOKED)) {
                        segments.add(segEntry);
                    }
                }
            }
        } else if (table == Table.BLKDEV) {
            // The blkdev's channels are the ones whose client claim holds its token.
            for (int seg = 0; seg < region.geometry().segmentCount(); seg++) {
                ChannelSegment ch = region.channel(seg);
                if (ch.clientClaim() == claim && ch.casClientClaim(claim, MetaEntry.CLAIM_REVOKED)) {
                    channels.add(ch);
                }
            }
        }
        // Step 2: a paused owner that passed a claim check just before the revocation finishes its store meanwhile.
        awaitGrace(options);
        // Step 3: wipe and free.
        for (MetaEntry segEntry : segments) {
            segEntry.wipeRecords();
            segEntry.casClaim(MetaEntry.CLAIM_REVOKED, 0);
        }
        for (ChannelSegment ch : channels) {
            if (ch.clientState() != ChannelLayout.SIDE_FENCED) {
                ch.control.putIntRelease(ChannelLayout.CLIENT_STATE, ChannelLayout.SIDE_STOPPED);
            }
            ch.casClientClaim(MetaEntry.CLAIM_REVOKED, 0);
        }
        e.wipeRecords();
        e.casClaim(MetaEntry.CLAIM_REVOKED, 0);
        tracker.reset(slot);
    }

    /** The janitor's grace period between revoking a dead owner's claims and freeing them: one heartbeat interval. */
    static void awaitGrace(CxlOptions options) {
        long until = System.nanoTime() + options.heartbeatInterval().toNanos();
        long left;
        boolean interrupted = false;
        while ((left = until - System.nanoTime()) > 0) {
            try {
                Thread.sleep(Math.max(1, left / 1_000_000)); // control path: a deliberate delay, not a handshake
            } catch (InterruptedException ex) {
                interrupted = true; // the grace is not shortened (claims must not be freed early); re-set below
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** Snapshot of the region plus this host's view of who is alive. */
    public RegionStatus status() {
        RegionStatus s = RegionStatus.read(region);
        long now = System.nanoTime();
        return s.withLiveness((table, slot) -> region.entry(table, slot).claim() != 0
                && !trackers.get(table).isDead(slot, now));
    }

    public List<CxlBackend> backends() {
        return new ArrayList<>(backends);
    }

    public List<CxlBlockDevice> blkdevs() {
        return new ArrayList<>(blkdevs);
    }

    private void observeAll(long now) {
        for (Map.Entry<Table, LivenessTracker> t : trackers.entrySet()) {
            LivenessTracker tracker = t.getValue();
            MetaEntry[] entries = watched.get(t.getKey());
            for (int s = 0; s < entries.length; s++) {
                MetaEntry e = entries[s];
                if (e.claim() == 0) {
                    tracker.reset(s);
                } else {
                    tracker.observe(s, e.heartbeat(), now);
                }
            }
        }
    }

    private void onAgentError(Throwable t) {
        System.err.println("cxl host agent error: " + t);
    }

    /** Closes every blkdev and backend this process owns, marks the host stopped and frees its entry. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (CxlBlockDevice d : blkdevs) {
            d.close();
        }
        for (CxlBackend b : backends) {
            b.close();
        }
        if (completionAgents != null) {
            for (CompletionAgent a : completionAgents) {
                a.close();
            }
        }
        if (handlerAgents != null) {
            for (HandlerAgent a : handlerAgents) {
                a.close();
            }
        }
        runner.close();
        if (entry.claim() == token) { // a host paused past the dead timeout may have been cleared meanwhile
            writeHostRecord(Records.STATE_STOPPED);
            entry.wipeRecords();
            entry.casClaim(token, 0);
        }
        region.hostClosed(this);
    }

    /** Tests: stops (or resumes) this host's heartbeats and observations, as if the process were paused. */
    void freezeForTest(boolean frozen) {
        hostAgent.frozen = frozen;
    }

    private record Owned(MetaEntry entry, long token) {
    }

    /** Heartbeats for everything this process owns, and liveness observation of everything else. */
    private final class HostAgent implements Agent {
        private long nextBeatNs;
        /** Test hook: models this process paused (GC, SIGSTOP): no beats, no observation. */
        private volatile boolean frozen;
        private final long intervalNs = options.heartbeatInterval().toNanos();
        /** Parks until {@link #nextBeatNs}; at least a quarter interval while frozen (its beat stays overdue). */
        final IdleStrategy untilNextBeat = new IdleStrategy() {
            @Override
            public void idle(int workCount) {
                if (workCount > 0) {
                    return;
                }
                idle();
            }

            @Override
            public void idle() {
                long wait = nextBeatNs - System.nanoTime();
                LockSupport.parkNanos(wait > 0 ? wait : Math.max(1, intervalNs / 4));
            }

            @Override
            public void reset() {
            }
        };

        @Override
        public int doWork() {
            if (frozen) {
                return 0;
            }
            long now = System.nanoTime();
            if (now - nextBeatNs < 0) {
                return 0;
            }
            nextBeatNs = now + intervalNs;
            for (Owned o : owned) {
                // Only while the claim is still ours: a host paused past the dead timeout and cleared meanwhile must
                // not make someone else's entry look alive (the check-then-beat window is covered by the grace).
                if (o.entry.claim() == o.token) {
                    o.entry.beat();
                }
            }
            observeAll(now);
            return 1;
        }

        @Override
        public String roleName() {
            return "cxl-host-" + slot;
        }
    }
}
