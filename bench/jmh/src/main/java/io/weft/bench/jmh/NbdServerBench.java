package io.weft.bench.jmh;

import io.weft.core.nbd.NbdExport;
import io.weft.core.nbd.NbdServer;
import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The NBD request path through the public {@link NbdServer} API: a server in this JVM exports a tmpfs
 * {@link StoreBlockDevice} on a Unix socket, and the benchmark thread is a minimal blocking NBD client (fixed
 * newstyle, EXPORT_NAME, simple replies). One op = one request header written, parsed and checked by the server's
 * connection reader, the store IO, the reply encoded and read back. The header flyweight and reply encoder are
 * package-private in {@code io.weft.core.nbd}, so they are measured here as part of this round trip rather than
 * alone. Allocation per op covers the server's threads too.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class NbdServerBench {
    private static final long NBDMAGIC = 0x4e42444d41474943L;
    private static final long IHAVEOPT = 0x49484156454F5054L;
    private static final int REQUEST_MAGIC = 0x25609513;
    private static final int SIMPLE_REPLY_MAGIC = 0x67446698;
    private static final int CMD_READ = 0;
    private static final int CMD_WRITE = 1;
    private static final int BLOCK = 4096;
    private static final int BLOCKS = 4096;

    private Path dir;
    private NbdServer server;
    private StoreBlockDevice device;
    private SocketChannel socket;
    private ByteBuffer request;
    private ByteBuffer reply;
    private ByteBuffer payload;
    private long handle;
    private long next;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        dir = Files.createTempDirectory(Path.of("/dev/shm"), "weft-jmh-nbd-");
        device = new StoreBlockDevice(FileBackingStore.createSparse(dir.resolve("vol0.img"), (long) BLOCKS * BLOCK));
        server = new NbdServer();
        server.addExport(new NbdExport("vol0", "jmh", device));
        Path sock = dir.resolve("nbd.sock");
        server.bindUnix(sock);
        socket = SocketChannel.open(StandardProtocolFamily.UNIX);
        socket.connect(UnixDomainSocketAddress.of(sock));
        handshake();
        request = ByteBuffer.allocateDirect(28);
        reply = ByteBuffer.allocateDirect(16);
        payload = ByteBuffer.allocateDirect(BLOCK);
        for (int b = 0; b < BLOCKS; b++) {
            roundTrip(CMD_WRITE, (long) b * BLOCK);
        }
    }

    /** Fixed newstyle with NO_ZEROES, then EXPORT_NAME "vol0" (the reply is size + transmission flags). */
    private void handshake() throws IOException {
        ByteBuffer greeting = readFully(ByteBuffer.allocate(18));
        if (greeting.getLong(0) != NBDMAGIC || greeting.getLong(8) != IHAVEOPT) {
            throw new IOException("not an NBD newstyle server");
        }
        writeFully(ByteBuffer.allocate(4).putInt(0, 3));
        byte[] name = "vol0".getBytes(StandardCharsets.UTF_8);
        ByteBuffer opt = ByteBuffer.allocate(16 + name.length);
        opt.putLong(IHAVEOPT).putInt(1).putInt(name.length).put(name).flip();
        writeFully(opt);
        ByteBuffer export = readFully(ByteBuffer.allocate(10));
        if (export.getLong(0) != (long) BLOCKS * BLOCK) {
            throw new IOException("unexpected export size " + export.getLong(0));
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        socket.close();
        server.close();
        device.close();
        Files.deleteIfExists(dir.resolve("vol0.img"));
        Files.deleteIfExists(dir.resolve("nbd.sock"));
        Files.deleteIfExists(dir);
    }

    private ByteBuffer readFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (socket.read(b) < 0) {
                throw new EOFException("server closed the connection");
            }
        }
        return b.flip();
    }

    private void writeFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            socket.write(b);
        }
    }

    private int roundTrip(int type, long offset) throws IOException {
        long h = ++handle;
        request.clear();
        request.putInt(0, REQUEST_MAGIC).putShort(4, (short) 0).putShort(6, (short) type).putLong(8, h)
                .putLong(16, offset).putInt(24, BLOCK);
        writeFully(request);
        if (type == CMD_WRITE) {
            payload.clear();
            writeFully(payload);
        }
        reply.clear();
        readFully(reply);
        if (reply.getInt(0) != SIMPLE_REPLY_MAGIC || reply.getLong(8) != h || reply.getInt(4) != 0) {
            throw new IOException("bad reply: error " + reply.getInt(4));
        }
        if (type == CMD_READ) {
            payload.clear();
            readFully(payload);
        }
        return reply.getInt(4);
    }

    private long nextOffset() {
        next = (next + 977) & (BLOCKS - 1);
        return next * BLOCK;
    }

    @Benchmark
    public int read4k() throws IOException {
        return roundTrip(CMD_READ, nextOffset());
    }

    @Benchmark
    public int write4k() throws IOException {
        return roundTrip(CMD_WRITE, nextOffset());
    }
}
