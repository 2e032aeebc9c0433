package io.weft.core.nbd;

import io.weft.core.io.BlockDevice;
import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.Function;
import java.util.stream.Stream;

/**
 * An NbdServer over a StoreBlockDevice on a fresh sparse file (in /dev/shm when available), listening on an
 * ephemeral loopback TCP port and on a Unix socket in a private directory. Everything is removed on close.
 */
final class NbdFixture implements AutoCloseable {
    static final String EXPORT = "vol0";

    final Path dir;
    final Path file;
    final FileBackingStore store;
    final StoreBlockDevice storeDevice;
    final BlockDevice device;
    final NbdServer server;
    final InetSocketAddress tcp;
    final Path unixSocket;
    private final List<AutoCloseable> extras = new ArrayList<>();

    NbdFixture(long size) throws IOException {
        this(size, NbdServerOptions.defaults(), d -> d);
    }

    /** {@code wrap} may put a test device in front of the store device. */
    NbdFixture(long size, NbdServerOptions options, Function<StoreBlockDevice, BlockDevice> wrap)
            throws IOException {
        this(size, options, wrap, NbdTls.off());
    }

    /** With a TLS policy ({@link NbdTls}). */
    NbdFixture(long size, NbdServerOptions options, Function<StoreBlockDevice, BlockDevice> wrap, NbdTls tls)
            throws IOException {
        Path shm = Path.of("/dev/shm");
        dir = Files.isDirectory(shm) && Files.isWritable(shm)
                ? Files.createTempDirectory(shm, "weft-nbd-") : Files.createTempDirectory("weft-nbd-");
        file = dir.resolve("vol0.img");
        store = FileBackingStore.createSparse(file, size);
        storeDevice = new StoreBlockDevice(store);
        device = wrap.apply(storeDevice);
        server = new NbdServer(options, tls);
        server.addExport(new NbdExport(EXPORT, "test volume", device));
        tcp = server.bindTcp("127.0.0.1", 0);
        unixSocket = dir.resolve("nbd.sock");
        server.bindUnix(unixSocket);
    }

    String tcpUri(String export) {
        return "nbd://127.0.0.1:" + tcp.getPort() + "/" + export;
    }

    String unixUri(String export) {
        return "nbd+unix:///" + export + "?socket=" + unixSocket;
    }

    UnixDomainSocketAddress unixAddress() {
        return UnixDomainSocketAddress.of(unixSocket);
    }

    /** Registers something to close with the fixture (before the server closes). */
    <T extends AutoCloseable> T closeLater(T c) {
        extras.add(c);
        return c;
    }

    /** Reads bytes straight from the backing file, bypassing the server. */
    byte[] fileBytes(long offset, int length) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(length);
            while (b.hasRemaining()) {
                if (ch.read(b, offset + b.position()) < 0) {
                    break;
                }
            }
            return b.array();
        }
    }

    @Override
    public void close() throws Exception {
        for (int i = extras.size() - 1; i >= 0; i--) {
            try {
                extras.get(i).close();
            } catch (Exception e) {
                // keep closing the rest
            }
        }
        server.close();
        device.close();
        storeDevice.close();
        try (Stream<Path> paths = Files.walk(dir)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}
