package io.weft.cxl;

import io.weft.cxl.CxlRegion.Table;
import io.weft.cxl.layout.FenceCode;
import io.weft.cxl.layout.MetaEntry;
import io.weft.cxl.layout.Records;
import java.util.ArrayList;
import java.util.List;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * A point-in-time reading of a region's tables and channels, for status pages, the control plane and tests. Liveness
 * is only known to a {@link CxlHost} that has been watching heartbeats; a bare snapshot reports it as unknown (false).
 */
public record RegionStatus(List<Host> hosts, List<Backend> backends, List<Blkdev> blkdevs, List<Channel> channels) {

    public record Host(int slot, long nodeId, String name, String state, long heartbeat, boolean alive) {
    }

    public record Backend(int slot, int hostSlot, long nodeId, String storePath, long size, int channels,
                          int[] segments, String state, long heartbeat, boolean alive) {
    }

    public record Blkdev(int slot, int backendSlot, int hostSlot, int queues, String state, long heartbeat,
                         boolean alive) {
    }

    public record Channel(int segment, int backendSlot, int channelIndex, long submissionHead, long submissionTail,
                          long completionHead, long completionTail, String backendState, FenceCode backendFence,
                          String backendFenceReason, String clientState, FenceCode clientFence,
                          String clientFenceReason, boolean clientAttached) {
        public boolean fenced() {
            return backendFence != FenceCode.NONE || clientFence != FenceCode.NONE;
        }
    }

    interface Liveness {
        boolean alive(Table table, int slot);
    }

    static RegionStatus read(CxlRegion region) {
        UnsafeBuffer body = new UnsafeBuffer(new byte[MetaEntry.BODY_SIZE]);
        List<Host> hosts = new ArrayList<>();
        for (int s = 0; s < region.tableSize(Table.HOST); s++) {
            MetaEntry e = region.entry(Table.HOST, s);
            if (e.claim() != 0 && e.read(body) >= 0) {
                hosts.add(new Host(s, body.getLong(Records.HOST_NODE_ID),
                        Records.getString(body, Records.HOST_NAME, Records.HOST_NAME_MAX),
                        Records.stateName(body.getInt(Records.HOST_STATE)), e.heartbeat(), false));
            }
        }
        List<Backend> backends = new ArrayList<>();
        List<Channel> channels = new ArrayList<>();
        for (int s = 0; s < region.tableSize(Table.BACKEND); s++) {
            MetaEntry e = region.entry(Table.BACKEND, s);
            if (e.claim() != 0 && e.read(body) >= 0) {
                int n = Math.max(0, Math.min(body.getInt(Records.BACKEND_CHANNELS), Records.MAX_CHANNELS_PER_BACKEND));
                int[] segs = new int[n];
                for (int c = 0; c < n; c++) {
                    segs[c] = body.getInt(Records.BACKEND_SEGMENTS + 4 * c);
                }
                backends.add(new Backend(s, body.getInt(Records.BACKEND_HOST_SLOT),
                        body.getLong(Records.BACKEND_NODE_ID),
                        Records.getString(body, Records.BACKEND_PATH, Records.BACKEND_PATH_MAX),
                        body.getLong(Records.BACKEND_SIZE), n, segs,
                        Records.stateName(body.getInt(Records.BACKEND_STATE)),
                        e.heartbeat(), false));
                for (int seg : segs) {
                    if (seg >= 0 && seg < region.geometry().segmentCount()) {
                        ChannelSegment ch = region.channel(seg);
                        channels.add(new Channel(seg, ch.backendSlot(), ch.channelIndex(), ch.submissionHead(),
                                ch.submissionTail(), ch.completionHead(), ch.completionTail(),
                                ChannelSegment.sideName(ch.backendState()), ch.backendFence(), ch.backendFenceReason(),
                                ChannelSegment.sideName(ch.clientState()), ch.clientFence(), ch.clientFenceReason(),
                                ch.clientClaim() != 0));
                    }
                }
            }
        }
        List<Blkdev> blkdevs = new ArrayList<>();
        for (int s = 0; s < region.tableSize(Table.BLKDEV); s++) {
            MetaEntry e = region.entry(Table.BLKDEV, s);
            if (e.claim() != 0 && e.read(body) >= 0) {
                blkdevs.add(new Blkdev(s, body.getInt(Records.BLKDEV_BACKEND_SLOT),
                        body.getInt(Records.BLKDEV_HOST_SLOT),
                        body.getInt(Records.BLKDEV_QUEUES), Records.stateName(body.getInt(Records.BLKDEV_STATE)),
                        e.heartbeat(), false));
            }
        }
        return new RegionStatus(hosts, backends, blkdevs, channels);
    }

    RegionStatus withLiveness(Liveness liveness) {
        List<Host> h = new ArrayList<>();
        for (Host x : hosts) {
            h.add(new Host(x.slot, x.nodeId, x.name, x.state, x.heartbeat, liveness.alive(Table.HOST, x.slot)));
        }
        List<Backend> b = new ArrayList<>();
        for (Backend x : backends) {
            b.add(new Backend(x.slot, x.hostSlot, x.nodeId, x.storePath, x.size, x.channels, x.segments, x.state,
                    x.heartbeat, liveness.alive(Table.BACKEND, x.slot)));
        }
        List<Blkdev> d = new ArrayList<>();
        for (Blkdev x : blkdevs) {
            d.add(new Blkdev(x.slot, x.backendSlot, x.hostSlot, x.queues, x.state, x.heartbeat,
                    liveness.alive(Table.BLKDEV, x.slot)));
        }
        return new RegionStatus(h, b, d, channels);
    }

    /** The channel in {@code segment}, if it belongs to a backend. */
    public Channel channel(int segment) {
        for (Channel c : channels) {
            if (c.segment == segment) {
                return c;
            }
        }
        return null;
    }

    /** Human-readable table. */
    public String render() {
        StringBuilder sb = new StringBuilder();
        for (Host x : hosts) {
            sb.append(String.format("host    %2d node %d %-16s %-8s beat %d%s%n", x.slot, x.nodeId, x.name, x.state,
                    x.heartbeat, x.alive ? " alive" : ""));
        }
        for (Backend x : backends) {
            sb.append(String.format("backend %2d host %d %s size %d channels %d %-8s beat %d%s%n", x.slot, x.hostSlot,
                    x.storePath, x.size, x.channels, x.state, x.heartbeat, x.alive ? " alive" : ""));
        }
        for (Blkdev x : blkdevs) {
            sb.append(String.format("blkdev  %2d backend %d host %d queues %d %-8s beat %d%s%n", x.slot,
                    x.backendSlot, x.hostSlot, x.queues, x.state, x.heartbeat, x.alive ? " alive" : ""));
        }
        for (Channel c : channels) {
            sb.append(String.format("channel seg %2d backend %d #%d sub %d/%d comp %d/%d backend %s client %s%s%s%n",
                    c.segment, c.backendSlot, c.channelIndex, c.submissionHead, c.submissionTail, c.completionHead,
                    c.completionTail, c.backendState, c.clientState,
                    c.backendFence != FenceCode.NONE
                            ? " fenced by backend: " + c.backendFence + " " + c.backendFenceReason : "",
                    c.clientFence != FenceCode.NONE
                            ? " fenced by client: " + c.clientFence + " " + c.clientFenceReason : ""));
        }
        return sb.toString();
    }
}
