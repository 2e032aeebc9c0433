package io.weft.node.config;

import java.nio.file.Path;
import java.util.OptionalLong;

/**
 * One entry of {@code weft.volumes}.
 *
 * @param key         where it came from, e.g. {@code weft.volumes[0]} (for messages)
 * @param name        export name
 * @param path        file or block device, already resolved against the data directory
 * @param size        size to create a missing file with; empty when not given
 * @param readOnly    serve without write access
 * @param description free text (shown in status)
 */
public record VolumeSettings(String key, String name, Path path, OptionalLong size, boolean readOnly,
                             String description) {
}
