package io.weft.cxl;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.cxl.CxlRegion.Table;
import io.weft.cxl.layout.ChannelLayout;
import io.weft.cxl.layout.MetaEntry;
import io.weft.cxl.layout.Records;
import java.util.ArrayList;
import java.util.List;
import org.agrona.concurrent.BusySpinIdleStrategy;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Storage side of one backing store in a region: a backend table entry, its channel segments and the handler agents
 * serving them against a {@link BlockDevice}.
 */
public final class CxlBackend implements AutoCloseable {
    private final CxlHost host;
    private final int slot;
    private final long token;
    private final MetaEntry entry;
    private final BlockDevice device;
    private final String storePath;
    private final int[] segments;
    private final ChannelHandler[] handlers;
    /** The process's shared handler agents serving this backend, and this backend's group on each. */
    private final HandlerAgent[] agents;
    private final HandlerAgent.Group[] groups;
    private boolean closed;

    private CxlBackend(CxlHost host, int slot, long token, BlockDevice device, String storePath, int[] segments,
                       BackendOptions options, boolean fresh, byte[] grantDigest) {
        this.grantDigest = grantDigest;
        this.host = host;
        this.slot = slot;
        this.token = token;
        this.entry = host.region().entry(Table.BACKEND, slot);
        this.device = device;
        this.storePath = storePath;
        this.segments = segments;
        CxlRegion region = host.region();
        long beatNs = host.options().heartbeatInterval().toNanos();
        int channelFlags = (options.entryCrc() ? ChannelLayout.FLAG_ENTRY_CRC : 0)
                | (options.dataCrc() ? ChannelLayout.FLAG_DATA_CRC : 0);
        this.handlers = new ChannelHandler[segments.length];
        UnsafeBuffer body = new UnsafeBuffer(new byte[MetaEntry.BODY_SIZE]);
        for (int c = 0; c < segments.length; c++) {
            ChannelSegment seg = region.channel(segments[c]);
            if (fresh) {
                seg.initialise(c, slot, channelFlags);
                body.setMemory(0, body.capacity(), (byte) 0);
                body.putInt(Records.SEGMENT_TYPE, Records.SEGMENT_TYPE_CHANNEL);
                body.putInt(Records.SEGMENT_STATE, Records.STATE_RUNNING);
                body.putInt(Records.SEGMENT_BACKEND_SLOT, slot);
                body.putInt(Records.SEGMENT_CHANNEL_INDEX, c);
                region.entry(Table.SEGMENT, segments[c]).write(body);
            }
            handlers[c] = new ChannelHandler(seg, region.entry(Table.SEGMENT, segments[c]), token, device, beatNs);
            handlers[c].attach();
        }
        writeRecord(Records.STATE_RUNNING);
        host.own(entry, token);
        // Channels spread round-robin over the least loaded of the process's shared handler agents: no thread of its
        // own, so threads and idle wake-ups do not grow with the number of backends.
        this.agents = host.handlerAgentsFor(Math.min(options.handlerAgents(), segments.length));
        this.groups = new HandlerAgent.Group[agents.length];
        for (int a = 0; a < agents.length; a++) {
            List<ChannelHandler> mine = new ArrayList<>();
            for (int c = a; c < handlers.length; c += agents.length) {
                mine.add(handlers[c]);
            }
            groups[a] = new HandlerAgent.Group(mine.toArray(new ChannelHandler[0]));
            agents[a].add(groups[a]);
        }
    }

    /** SHA-256 of the capability a blkdev must present (see {@link CxlHost#createBackend}), or 32 zero bytes. */
    private final byte[] grantDigest;

    static CxlBackend create(CxlHost host, BlockDevice device, String storePath, BackendOptions options,
                             byte[] grantDigest) {
        if (grantDigest.length != Records.GRANT_DIGEST_LENGTH) {
            throw new IllegalArgumentException("grant digest must be " + Records.GRANT_DIGEST_LENGTH + " bytes");
        }
        CxlRegion region = host.region();
        long token = CxlHost.newToken();
        int slot = -1;
        for (int s = 0; s < region.tableSize(Table.BACKEND); s++) {
            MetaEntry e = region.entry(Table.BACKEND, s);
            if (e.claim() == 0 && e.casClaim(0, token)) {
                e.wipeRecords();
                slot = s;
                break;
            }
        }
        if (slot < 0) {
            int size = region.tableSize(Table.BACKEND);
            throw RegionFullException.of(region, "backends", size, 1, size);
        }
        int[] segments = new int[options.channels()];
        int found = 0;
        for (int s = 0; s < region.geometry().segmentCount() && found < segments.length; s++) {
            MetaEntry e = region.entry(Table.SEGMENT, s);
            if (e.claim() == 0 && e.casClaim(0, token)) {
                segments[found++] = s;
            }
        }
        if (found < segments.length) {
            for (int i = 0; i < found; i++) {
                region.entry(Table.SEGMENT, segments[i]).casClaim(token, 0);
            }
            region.entry(Table.BACKEND, slot).casClaim(token, 0);
            int total = region.geometry().segmentCount();
            throw RegionFullException.of(region, "channel segments", total - found, segments.length, total);
        }
        return new CxlBackend(host, slot, token, device, storePath, segments, options, true, grantDigest.clone());
    }

    static CxlBackend reattach(CxlHost host, int backendId, BlockDevice device, BackendOptions options) {
        CxlRegion region = host.region();
        MetaEntry e = region.entry(Table.BACKEND, backendId);
        UnsafeBuffer body = new UnsafeBuffer(new byte[MetaEntry.BODY_SIZE]);
        long oldToken = e.claim();
        if (oldToken == 0 || oldToken == MetaEntry.CLAIM_REVOKED || e.read(body) < 0) {
            throw new IllegalStateException("backend " + backendId + " does not exist (free or unreadable entry)");
        }
        long ownerNode = body.getLong(Records.BACKEND_NODE_ID);
        if (ownerNode != host.nodeId()) {
            throw new IllegalStateException("backend " + backendId + " belongs to node " + ownerNode + ", not "
                    + host.nodeId());
        }
        if (!CxlHost.awaitSilent(e, host.options())) {
            throw new IllegalStateException("backend " + backendId + " is still alive: refusing to take it over");
        }
        int channels = body.getInt(Records.BACKEND_CHANNELS);
        if (channels < 1 || channels > Records.MAX_CHANNELS_PER_BACKEND) {
            throw new IllegalStateException("backend " + backendId + " record has " + channels + " channels");
        }
        String path = Records.getString(body, Records.BACKEND_PATH, Records.BACKEND_PATH_MAX);
        byte[] digest = new byte[Records.GRANT_DIGEST_LENGTH]; // the grant survives the takeover
        body.getBytes(Records.BACKEND_GRANT_DIGEST, digest);
        long token = CxlHost.newToken();
        if (!e.casClaim(oldToken, token)) {
            throw new IllegalStateException("backend " + backendId + " changed owner during takeover");
        }
        int[] segments = new int[channels];
        for (int c = 0; c < channels; c++) {
            int seg = body.getInt(Records.BACKEND_SEGMENTS + 4 * c);
            if (seg < 0 || seg >= region.geometry().segmentCount()) {
                throw new IllegalStateException("backend " + backendId + " lists segment " + seg);
            }
            MetaEntry segEntry = region.entry(Table.SEGMENT, seg);
            if (!segEntry.casClaim(oldToken, token)) {
                throw new IllegalStateException("segment " + seg + " of backend " + backendId + " is not owned by it");
            }
            segments[c] = seg;
        }
        // The old owner looked dead but may only be paused: its claim checks fail from now on; give a publish it
        // began before the takeover time to land before the new handlers read the indexes (docs/cxl.md, "Claims").
        CxlHost.awaitGrace(host.options());
        return new CxlBackend(host, backendId, token, device, path, segments, options, false, digest);
    }

    private void writeRecord(int state) {
        DeviceInfo info = device.info();
        UnsafeBuffer body = new UnsafeBuffer(new byte[MetaEntry.BODY_SIZE]);
        body.putInt(Records.BACKEND_HOST_SLOT, host.slot());
        body.putInt(Records.BACKEND_STATE, state);
        body.putLong(Records.BACKEND_SIZE, info.size());
        body.putInt(Records.BACKEND_LOGICAL_BLOCK, info.logicalBlockSize());
        body.putInt(Records.BACKEND_MAX_IO, Math.min(info.maxIoSize(), host.region().geometry().slotSize()));
        body.putInt(Records.BACKEND_CAPS, info.capabilityBits());
        body.putInt(Records.BACKEND_CHANNELS, segments.length);
        for (int c = 0; c < segments.length; c++) {
            body.putInt(Records.BACKEND_SEGMENTS + 4 * c, segments[c]);
        }
        Records.putString(body, Records.BACKEND_PATH, Records.BACKEND_PATH_MAX, storePath);
        body.putLong(Records.BACKEND_NODE_ID, host.nodeId());
        body.putBytes(Records.BACKEND_GRANT_DIGEST, grantDigest);
        entry.write(body);
    }

    /** Tests: stops (or resumes) this backend's duty cycles on every agent, as if the process were paused. */
    void freezeForTest(boolean frozen) {
        for (int a = 0; a < agents.length; a++) {
            agents[a].freeze(groups[a], frozen);
        }
    }

    /** Tests: duty cycles run for this backend so far. */
    long dutyCyclesForTest() {
        long n = 0;
        for (HandlerAgent.Group g : groups) {
            n += g.dutyCycles.get();
        }
        return n;
    }

    /** Tests: true once every agent has seen the freeze (it writes nothing into these segments from then on). */
    boolean frozenForTest() {
        for (HandlerAgent.Group g : groups) {
            if (!g.frozenSeen) {
                return false;
            }
        }
        return true;
    }

    /** Backend id = its slot in the backend table; clients open blkdevs by it. */
    public int id() {
        return slot;
    }

    /**
     * When a client of this backend was last heard, by this host's clock ({@link CxlHost#blkdevLastHeardNanos}), or
     * {@link CxlHost#NEVER_HEARD}.
     */
    public long clientLastHeardNanos() {
        return host.blkdevLastHeardNanos(slot);
    }

    public int channelCount() {
        return segments.length;
    }

    public int[] segmentIds() {
        return segments.clone();
    }

    /** Requests completed per channel since this process attached. */
    public long served(int channel) {
        return handlers[channel].served();
    }

    /** Fence state of each channel as stored in the region ({@code null} entries for unfenced channels). */
    public List<String> fenceReasons() {
        List<String> out = new ArrayList<>();
        for (ChannelHandler h : handlers) {
            ChannelSegment seg = h.segment();
            if (h.claimLost()) {
                out.add("CLAIM_LOST: segment " + seg.segmentId() + " was revoked (this backend was declared dead and"
                        + " cleared); nothing more is written to it");
                continue;
            }
            out.add(seg.backendState() == ChannelLayout.SIDE_FENCED
                    ? seg.backendFence() + ": " + seg.backendFenceReason() : null);
        }
        return out;
    }

    public boolean isFenced(int channel) {
        return handlers[channel].segment().backendState() == ChannelLayout.SIDE_FENCED;
    }

    /**
     * Clears a fenced channel so it can serve again: its rings are emptied and its fence removed. Refused while a
     * blkdev holds the channel (close or clear that blkdev first); returns once the handler agent has done it.
     */
    public void resetChannel(int channel) {
        ChannelHandler handler = handlers[channel];
        if (handler.segment().clientClaim() != 0) {
            throw new IllegalStateException("channel " + channel + " is held by a blkdev: close or clear it first");
        }
        handler.requestReset();
        for (HandlerAgent a : agents) {
            a.wake();
        }
        long deadline = System.nanoTime() + host.options().deadTimeout().toNanos() * 5;
        while (handler.resetPending()) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("handler agent did not reset channel " + channel);
            }
            BusySpinIdleStrategy.INSTANCE.idle(); // a control-thread wait with a deadline; stateless
        }
    }

    /**
     * Stops the handlers and frees the backend's entry and channel segments. Attached clients see the channels stopped
     * and fail outstanding requests with ESHUTDOWN.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        long timeoutNs = host.options().deadTimeout().toNanos() * 5;
        for (int a = 0; a < agents.length; a++) {
            // The agent marks the channels stopped and lets go of them; only then are the segments freed below.
            if (!agents[a].remove(groups[a], timeoutNs)) {
                System.err.println("cxl: handler agent " + agents[a].roleName() + " did not release backend " + slot
                        + " within " + timeoutNs / 1_000_000 + " ms; freeing its segments anyway");
            }
        }
        // Only what is still ours: a backend paused past the dead timeout may have been cleared and its entry and
        // segments reassigned meanwhile. Stopped first, so no client opens it while its segments are being freed.
        boolean ownsEntry = entry.claim() == token;
        if (ownsEntry) {
            writeRecord(Records.STATE_STOPPED);
        }
        host.disown(entry, this, null);
        CxlRegion region = host.region();
        for (int seg : segments) {
            MetaEntry e = region.entry(Table.SEGMENT, seg);
            if (e.claim() == token) {
                e.wipeRecords();
                e.casClaim(token, 0);
            }
        }
        if (ownsEntry && entry.claim() == token) {
            entry.wipeRecords();
            entry.casClaim(token, 0);
        }
    }
}
