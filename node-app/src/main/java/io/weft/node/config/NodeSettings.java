package io.weft.node.config;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * The validated settings of one node (the {@code weft} section; see reference.conf for what each means).
 * Paths are absolute. Empty optionals mean "off".
 */
public record NodeSettings(
        Path dataDir,
        Optional<HostPort> nbdListen,
        Optional<Path> nbdUnixSocket,
        int maxIoSize,
        Optional<HostPort> httpListen,
        int ioQueueDepth,
        Duration statsInterval,
        int statsInFlightSlots,
        boolean statsLog,
        List<VolumeSettings> volumes) {

    public NodeSettings {
        volumes = List.copyOf(volumes);
    }
}
