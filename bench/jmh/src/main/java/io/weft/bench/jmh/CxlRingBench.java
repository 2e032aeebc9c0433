package io.weft.bench.jmh;

import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import io.weft.cxl.BackendOptions;
import io.weft.cxl.BlkdevOptions;
import io.weft.cxl.CxlBackend;
import io.weft.cxl.CxlBlockDevice;
import io.weft.cxl.CxlHost;
import io.weft.cxl.CxlOptions;
import io.weft.cxl.CxlRegion;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.agrona.concurrent.AgentInvoker;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * One request's round trip through a CXL channel inside one JVM, through the public API only: a region on a unique
 * {@code /dev/shm} file, a backend over a tmpfs {@link StoreBlockDevice} (its handler agent runs on its own thread)
 * and a blkdev opened in invoker mode, so the benchmark thread submits and then polls the completion ring itself.
 * One op = submit, the handler's pread/pwrite on the store, publish, completion seen. {@code localStore} is the
 * same request on the store in-process, the floor the ring adds to. Allocation per op counts every thread, the
 * handler agent's included.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class CxlRingBench implements IoCompletion {
    private static final int BLOCKS = 4096;

    /** {@code none}: entry CRC off; {@code entry}: entry CRC (the default); {@code data}: entry and payload CRC. */
    @Param({"entry", "data"})
    public String crc;

    @Param({"4096"})
    public int size;

    private Path regionPath;
    private Path storePath;
    private CxlRegion region;
    private CxlHost host;
    private CxlBackend backend;
    private CxlBlockDevice device;
    private StoreBlockDevice local;
    private AgentInvoker invoker;
    private ByteBuffer buffer;
    private long completed;
    private int lastStatus;
    private long next;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        String id = ProcessHandle.current().pid() + "-" + System.nanoTime();
        regionPath = Path.of("/dev/shm", "weft-jmh-region-" + id);
        storePath = Path.of("/dev/shm", "weft-jmh-store-" + id);
        boolean dataCrc = crc.equals("data");
        int flags = (crc.equals("none") ? 0 : RegionHeader.FLAG_ENTRY_CRC) | (dataCrc ? RegionHeader.FLAG_DATA_CRC : 0);
        region = CxlRegion.format(regionPath, new RegionGeometry(4, 4, 4, 2, 32, Math.max(size, 4096)), flags);
        host = CxlHost.register(region, 1, "jmh", CxlOptions.defaults());
        local = new StoreBlockDevice(FileBackingStore.createSparse(storePath, (long) BLOCKS * size));
        backend = host.createBackend(local, storePath.toString(),
                BackendOptions.defaults().withChannels(1).withCrc(!crc.equals("none"), dataCrc));
        device = host.openBlkdev(backend.id(), new BlkdevOptions(1, true));
        invoker = device.invoker();
        buffer = ByteBuffer.allocateDirect(size);
        for (int b = 0; b < BLOCKS; b++) { // real pages behind every offset
            buffer.clear();
            roundTrip(IoOp.WRITE, (long) b * size);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        device.close();
        backend.close();
        host.close();
        region.close();
        local.close();
        Files.deleteIfExists(regionPath);
        Files.deleteIfExists(storePath);
    }

    @Override
    public void onComplete(long tag, int status) {
        lastStatus = status;
        completed++;
    }

    private int roundTrip(IoOp op, long offset) {
        long target = completed + 1;
        device.submit(op, offset, size, 0, buffer, 0, this);
        while (completed < target) {
            invoker.invoke();
        }
        if (lastStatus != IoStatus.OK) {
            throw new IllegalStateException(op + " at " + offset + ": " + IoStatus.name(lastStatus));
        }
        return lastStatus;
    }

    private long nextOffset() {
        next = (next + 977) & (BLOCKS - 1); // an odd stride walks every block
        return next * size;
    }

    @Benchmark
    public int cxlRead() {
        buffer.clear();
        return roundTrip(IoOp.READ, nextOffset());
    }

    @Benchmark
    public int cxlWrite() {
        buffer.clear();
        return roundTrip(IoOp.WRITE, nextOffset());
    }

    @Benchmark
    public int localStoreRead() {
        buffer.clear();
        return local.execute(IoOp.READ, nextOffset(), size, 0, buffer);
    }
}
