package io.weft.core.nbd;

import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;

/**
 * Serves one file as export {@code vol0} for measuring with fio / nbdinfo by hand:
 * {@code java -cp ... io.weft.core.nbd.NbdServeMain FILE SIZE_MIB UNIX_SOCKET [TCP_PORT]}.
 * The file is created sparse if missing. Runs until killed. {@code -Dweft.nbd.tls=on|require} with
 * {@code -Dweft.nbd.tls-certificates=DIR} (the PEM layout) serves NBD over TLS.
 */
public final class NbdServeMain {
    private NbdServeMain() {
    }

    public static void main(String[] args) throws Exception {
        Path file = Path.of(args[0]);
        long size = Long.parseLong(args[1]) << 20;
        Path socket = Path.of(args[2]);
        int port = args.length > 3 ? Integer.parseInt(args[3]) : -1;
        FileBackingStore store = FileBackingStore.createSparse(file, size);
        // -Dweft.nbd.lendReads=false answers every READ from a copy (the path before zero-copy replies), to compare;
        // -Dweft.nbd.lendMinimum=BYTES lends READs from that size on (default StoreBlockDevice.DEFAULT_LEND_MINIMUM).
        StoreBlockDevice device = new StoreBlockDevice(store)
                .lendReads(Boolean.parseBoolean(System.getProperty("weft.nbd.lendReads", "true"))
                        ? Integer.getInteger("weft.nbd.lendMinimum", StoreBlockDevice.DEFAULT_LEND_MINIMUM)
                        : Integer.MAX_VALUE);
        // -Dweft.nbd.socketBuffer=BYTES sets SO_SNDBUF/SO_RCVBUF (0 = system default), for experiments.
        NbdServer server = new NbdServer(NbdServerOptions.defaults()
                .withSocketBufferSize(Integer.getInteger("weft.nbd.socketBuffer", 0)),
                NbdTls.fromDirectory(NbdTls.Mode.parse(System.getProperty("weft.nbd.tls", "off")),
                        Path.of(System.getProperty("weft.nbd.tls-certificates", ".")),
                        Boolean.getBoolean("weft.nbd.tls-verify-peer")));
        server.addExport(new NbdExport("vol0", "bench volume " + file, device));
        server.bindUnix(socket);
        if (port >= 0) {
            InetSocketAddress a = server.bindTcp("127.0.0.1", port);
            System.out.println("tcp " + a);
        }
        System.out.println("serving " + file + " on " + socket);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.close();
            device.close();
        }));
        new CountDownLatch(1).await();
    }
}
