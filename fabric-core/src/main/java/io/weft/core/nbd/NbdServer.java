package io.weft.core.nbd;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;

/**
 * NBD server (fixed newstyle) exporting {@link io.weft.core.io.BlockDevice}s over TCP and Unix sockets.
 * API skeleton: the implementation lands with the NBD server work.
 */
public final class NbdServer implements AutoCloseable {

    public NbdServer() {
    }

    /** Adds or replaces an export; new connections see it at once. */
    public void addExport(NbdExport export) {
        throw new UnsupportedOperationException("not implemented yet");
    }

    /** Removes an export; its open connections are closed after their in-flight requests complete. */
    public void removeExport(String name) {
        throw new UnsupportedOperationException("not implemented yet");
    }

    /** Listens on TCP; port 0 picks a free port. Returns the bound address. */
    public InetSocketAddress bindTcp(String host, int port) throws IOException {
        throw new UnsupportedOperationException("not implemented yet");
    }

    /** Listens on a Unix socket at {@code socketPath} (a stale socket file is replaced). */
    public void bindUnix(Path socketPath) throws IOException {
        throw new UnsupportedOperationException("not implemented yet");
    }

    /** Stops accepting, lets in-flight requests complete and their replies go out, closes every connection. */
    @Override
    public void close() {
    }
}
