package io.weft.node.cli;

import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import io.weft.cxl.CxlRegion;
import io.weft.cxl.RegionStatus;
import io.weft.cxl.layout.FenceCode;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code weft cxl}: creates and inspects CXL shared-memory regions. Nodes only attach regions
 * ({@code weft.cxl.regions}), so a region is formatted once with {@code weft cxl format} before the nodes sharing it
 * start.
 */
@Command(name = "cxl", mixinStandardHelpOptions = true,
        subcommands = {CxlCommand.Format.class, CxlCommand.Info.class},
        description = "Formats and inspects CXL shared-memory regions (attach them with weft.cxl.regions).")
public final class CxlCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** The region id as the control plane prints and compares it (hex of the format id). */
    static String regionId(CxlRegion region) {
        return Long.toHexString(region.formatId());
    }

    static long parseSize(String option, String text) {
        try {
            long bytes = ConfigFactory.empty().withValue("s", ConfigValueFactory.fromAnyRef(text)).getBytes("s");
            if (bytes <= 0) {
                throw new CommandLine.ParameterException(new CommandLine(new CxlCommand()),
                        option + ": must be positive: " + text);
            }
            return bytes;
        } catch (ConfigException e) {
            throw new CommandLine.ParameterException(new CommandLine(new CxlCommand()),
                    option + ": expected a size such as 256MiB or 1GiB, got \"" + text + "\"");
        }
    }

    /** {@code weft cxl format}. */
    @Command(name = "format", mixinStandardHelpOptions = true,
            description = {"Formats a region: a file on tmpfs/fsdax (created or resized) or a device-DAX /dev/daxX.Y.",
                "Refuses a path that already holds a valid region (other processes may use it) unless --force.",
                "Default geometry: 16 hosts, 16 backends, 64 blkdevs, 16 channels of 128 entries x 128 KiB "
                        + "(about 257 MiB of shared memory, touched only as channels are used on tmpfs)."})
    public static final class Format implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Parameters(index = "0", paramLabel = "PATH", description = "Region file or /dev/daxX.Y (e.g. "
                + CxlRegion.DEFAULT_PATH + ").")
        Path path;

        @Option(names = "--channels", paramLabel = "N",
                description = "Channel segments in the region (each served mapping takes weft.cxl.channels of them; "
                        + "default 16, or as many as fit in --size).")
        Integer channels;

        @Option(names = "--size", paramLabel = "SIZE",
                description = "Fit the region in SIZE (e.g. 512MiB): as many channels as fit, unless --channels.")
        String size;

        @Option(names = "--ring-depth", paramLabel = "N", defaultValue = "128",
                description = "Requests in flight per channel, a power of two (default ${DEFAULT-VALUE}).")
        int ringDepth;

        @Option(names = "--slot-size", paramLabel = "SIZE", defaultValue = "128KiB",
                description = "Largest request payload per data slot, a multiple of 4 KiB (default ${DEFAULT-VALUE}).")
        String slotSize;

        @Option(names = "--hosts", paramLabel = "N", defaultValue = "16",
                description = "Processes (nodes) that can attach at once (default ${DEFAULT-VALUE}).")
        int hosts;

        @Option(names = "--backends", paramLabel = "N", defaultValue = "16",
                description = "Served mappings at once (default ${DEFAULT-VALUE}).")
        int backends;

        @Option(names = "--blkdevs", paramLabel = "N", defaultValue = "64",
                description = "Client devices at once (default ${DEFAULT-VALUE}).")
        int blkdevs;

        @Option(names = "--data-crc", description = "CRC32C every payload as well as every ring entry (slower).")
        boolean dataCrc;

        @Option(names = "--no-entry-crc", description = "Do not CRC32C ring entries (not recommended).")
        boolean noEntryCrc;

        @Option(names = "--force", description = "Format even over a valid region: processes attached to it break.")
        boolean force;

        @Override
        public Integer call() throws IOException {
            PrintWriter out = spec.commandLine().getOut();
            PrintWriter err = spec.commandLine().getErr();
            RegionGeometry geometry;
            try {
                geometry = geometry();
            } catch (IllegalArgumentException e) {
                err.println("weft cxl format: " + e.getMessage());
                return WeftMain.EXIT_USAGE;
            }
            String refusal = force ? null : refusal();
            if (refusal != null) {
                err.println("weft cxl format: " + refusal);
                return WeftMain.EXIT_FAILURE;
            }
            int flags = (noEntryCrc ? 0 : RegionHeader.FLAG_ENTRY_CRC) | (dataCrc ? RegionHeader.FLAG_DATA_CRC : 0);
            try (CxlRegion region = CxlRegion.format(path, geometry, flags)) {
                out.printf("formatted %s: region %s, %d bytes, %d channels of %d entries x %d bytes, "
                                + "%d hosts, %d backends, %d blkdevs%n", path, regionId(region),
                        geometry.regionSize(), geometry.segmentCount(), geometry.ringDepth(), geometry.slotSize(),
                        geometry.maxHosts(), geometry.maxBackends(), geometry.maxBlkdevs());
                out.printf("attach it in every node that shares it, in the node's --config file: "
                        + "weft.cxl.regions = [\"%s\"]%n", path.toAbsolutePath());
            }
            return 0;
        }

        private RegionGeometry geometry() {
            int slot = Math.toIntExact(Math.min(Integer.MAX_VALUE, parseSize("--slot-size", slotSize)));
            int segments = channels != null ? channels : 16;
            if (channels == null && size != null) {
                long limit = parseSize("--size", size);
                RegionGeometry one = new RegionGeometry(hosts, backends, blkdevs, 1, ringDepth, slot);
                long fit = (limit - one.segmentsOffset()) / one.segmentSize();
                // the segment table grows by 1 KiB per channel: step down until the whole region fits
                while (fit >= 1 && new RegionGeometry(hosts, backends, blkdevs, (int) Math.min(fit, 1 << 16),
                        ringDepth, slot).regionSize() > limit) {
                    fit--;
                }
                if (fit < 1) {
                    throw new IllegalArgumentException("--size " + size + " is too small for one channel ("
                            + one.regionSize() + " bytes with this geometry)");
                }
                segments = (int) Math.min(fit, 1 << 16);
            }
            RegionGeometry g = new RegionGeometry(hosts, backends, blkdevs, segments, ringDepth, slot);
            if (size != null && g.regionSize() > parseSize("--size", size)) {
                throw new IllegalArgumentException(segments + " channels need " + g.regionSize()
                        + " bytes, more than --size " + size);
            }
            return g;
        }

        /** Why formatting {@link #path} would destroy something, or null when it is safe. */
        private String refusal() throws IOException {
            if (!Files.exists(path)) {
                return null;
            }
            try (CxlRegion existing = CxlRegion.attach(path)) {
                RegionStatus status = existing.status();
                return path + " already holds region " + regionId(existing) + " (" + status.hosts().size()
                        + " host(s), " + status.backends().size() + " backend(s) registered); nodes attached to it "
                        + "would break. Stop them, or pass --force";
            } catch (IOException e) {
                if (Files.isRegularFile(path) && Files.size(path) > 0) {
                    return path + " exists and is not a Weft region (" + e.getMessage()
                            + "); pass --force to overwrite it";
                }
                return null;
            }
        }
    }

    /** {@code weft cxl info}. */
    @Command(name = "info", mixinStandardHelpOptions = true,
            description = {"Shows a region: id, geometry, hosts, backends and blkdevs with their liveness, and "
                    + "every fenced channel. Reads only; never writes to the region."})
    public static final class Info implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Parameters(index = "0", paramLabel = "PATH", description = "Region file or /dev/daxX.Y.")
        Path path;

        @Option(names = "--watch", paramLabel = "MILLIS", defaultValue = "1000",
                description = "How long to watch heartbeats to tell live owners from dead ones; 0 = do not watch "
                        + "(liveness unknown) (default ${DEFAULT-VALUE}; a node's dead-timeout is 800ms by default).")
        long watchMillis;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            PrintWriter err = spec.commandLine().getErr();
            try (CxlRegion region = CxlRegion.attach(path)) {
                RegionStatus before = region.status();
                RegionStatus after = before;
                if (watchMillis > 0) {
                    // a heartbeat that moves within the window belongs to a live owner
                    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(watchMillis);
                    while (System.nanoTime() < deadline) {
                        LockSupport.parkNanos(Math.max(1, deadline - System.nanoTime()));
                    }
                    after = region.status();
                }
                print(out, region, before, after);
                return 0;
            } catch (IOException e) {
                err.println("weft cxl info: " + e.getMessage());
                return WeftMain.EXIT_FAILURE;
            }
        }

        private void print(PrintWriter out, CxlRegion region, RegionStatus before, RegionStatus after) {
            RegionGeometry g = region.geometry();
            int flags = region.flags();
            out.printf("region %s  %s%n", regionId(region), region.source());
            out.printf("size %d bytes  channels %d of %d entries x %d bytes  hosts %d  backends %d  blkdevs %d  "
                            + "crc %s%n", g.regionSize(), g.segmentCount(), g.ringDepth(), g.slotSize(), g.maxHosts(),
                    g.maxBackends(), g.maxBlkdevs(),
                    ((flags & RegionHeader.FLAG_ENTRY_CRC) != 0 ? "entries" : "")
                            + ((flags & RegionHeader.FLAG_DATA_CRC) != 0 ? "+data" : "")
                            + (flags == 0 ? "off" : ""));
            out.println();
            out.printf("hosts (%d):%n", after.hosts().size());
            for (RegionStatus.Host h : after.hosts()) {
                out.printf("  host    %3d  %-20s node %016x  %-8s %s%n", h.slot(), h.name(), h.nodeId(), h.state(),
                        liveness(h.heartbeat(), beat(before.hosts(), h.slot())));
            }
            out.printf("backends (%d):%n", after.backends().size());
            for (RegionStatus.Backend b : after.backends()) {
                out.printf("  backend %3d  host %d  %s  %d bytes  channels %d  %-8s %s%n", b.slot(), b.hostSlot(),
                        b.storePath(), b.size(), b.channels(), b.state(),
                        liveness(b.heartbeat(), beat(before.backends(), b.slot())));
            }
            out.printf("blkdevs (%d):%n", after.blkdevs().size());
            for (RegionStatus.Blkdev d : after.blkdevs()) {
                out.printf("  blkdev  %3d  backend %d  host %d  queues %d  %-8s %s%n", d.slot(), d.backendSlot(),
                        d.hostSlot(), d.queues(), d.state(),
                        liveness(d.heartbeat(), beat(before.blkdevs(), d.slot())));
            }
            long fenced = after.channels().stream().filter(RegionStatus.Channel::fenced).count();
            out.printf("fenced channels (%d):%n", fenced);
            for (RegionStatus.Channel c : after.channels()) {
                if (c.backendFence() != FenceCode.NONE) {
                    out.printf("  segment %3d  backend %d #%d  fenced by backend: %s %s%n", c.segment(),
                            c.backendSlot(), c.channelIndex(), c.backendFence(), c.backendFenceReason());
                }
                if (c.clientFence() != FenceCode.NONE) {
                    out.printf("  segment %3d  backend %d #%d  fenced by client: %s %s%n", c.segment(),
                            c.backendSlot(), c.channelIndex(), c.clientFence(), c.clientFenceReason());
                }
            }
        }

        private String liveness(long beatNow, Long beatBefore) {
            if (watchMillis <= 0 || beatBefore == null) {
                return "liveness unknown";
            }
            return beatNow != beatBefore ? "alive" : "no heartbeat for " + watchMillis + " ms (dead?)";
        }

        private static Long beat(java.util.List<?> entries, int slot) {
            for (Object o : entries) {
                if (o instanceof RegionStatus.Host h && h.slot() == slot) {
                    return h.heartbeat();
                }
                if (o instanceof RegionStatus.Backend b && b.slot() == slot) {
                    return b.heartbeat();
                }
                if (o instanceof RegionStatus.Blkdev d && d.slot() == slot) {
                    return d.heartbeat();
                }
            }
            return null;
        }
    }
}
