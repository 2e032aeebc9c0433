package io.weft.node.config;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * The validated settings of one node (the {@code weft} section; see reference.conf for what each means).
 * Paths are absolute. Empty optionals mean "off". {@code httpListen} is the configured management address
 * ({@code weft.management.http.*}); the control plane binds it. {@code tlsCertificates} is
 * {@code weft.tls.certificates} (the node's {@code weft certs init} directory, checked complete), empty when unset.
 */
public record NodeSettings(
        Path dataDir,
        Optional<HostPort> nbdListen,
        Optional<Path> nbdUnixSocket,
        Optional<HostPort> httpListen,
        List<VolumeSettings> volumes,
        Optional<Path> tlsCertificates) {

    public NodeSettings {
        volumes = List.copyOf(volumes);
    }
}
