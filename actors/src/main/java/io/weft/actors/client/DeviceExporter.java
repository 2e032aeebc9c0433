package io.weft.actors.client;

import io.weft.core.io.BlockDevice;

/**
 * How a client device becomes visible to users: normally an NBD export (see {@link NbdServerExporter}); tests use a
 * recording fake. Called by the device's actor only.
 */
public interface DeviceExporter {
    /**
     * Publishes (or replaces) an export.
     *
     * @return where it can be reached, for status tables (e.g. {@code nbd://127.0.0.1:10809/vol0})
     * @throws Exception when it cannot be exported; the device stays mapped and reports the error
     */
    String export(String name, String description, BlockDevice device) throws Exception;

    /** Withdraws an export; its connections finish their in-flight requests first. Never throws. */
    void unexport(String name);

    /** No export at all: devices are reachable through the Java API only. */
    static DeviceExporter none() {
        return new DeviceExporter() {
            @Override
            public String export(String name, String description, BlockDevice device) {
                return "";
            }

            @Override
            public void unexport(String name) {
            }
        };
    }
}
