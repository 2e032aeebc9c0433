package io.weft.actors.client;

import io.weft.core.io.BlockDevice;
import io.weft.core.nbd.NbdExport;
import io.weft.core.nbd.NbdServer;

/**
 * Exports devices through an {@link NbdServer} that the caller (node-app) created and bound.
 */
public final class NbdServerExporter implements DeviceExporter {
    private final NbdServer server;
    private final String urlPrefix;

    /**
     * @param server    bound by the caller; not closed here
     * @param urlPrefix shown in status, e.g. {@code nbd://127.0.0.1:10809/} (the export name is appended)
     */
    public NbdServerExporter(NbdServer server, String urlPrefix) {
        this.server = server;
        this.urlPrefix = urlPrefix;
    }

    @Override
    public String export(String name, String description, BlockDevice device) {
        server.addExport(new NbdExport(name, description, device));
        return urlPrefix + name;
    }

    @Override
    public void unexport(String name) {
        try {
            server.removeExport(name);
        } catch (RuntimeException e) {
            // An export that never got added (server not ready) has nothing to remove.
        }
    }
}
