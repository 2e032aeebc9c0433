package io.weft.actors.management;

import io.weft.actors.json.ByteSize;
import io.weft.actors.json.JsonBodies;
import java.util.List;

/**
 * The JSON bodies of the HTTP API's {@code POST} routes (docs/http-api.md), as Jackson records read by
 * {@link JsonBodies#read}: a bad field is a 400 that names it. Unknown fields are ignored; a missing field takes
 * the default the route documents, or is refused with {@code missing field 'NAME'} where the route needs it.
 */
final class HttpBodies {
    private HttpBodies() {
    }

    /**
     * {@code POST /weft/devices}: a single device ({@code storageNode}, {@code path}) or a mirrored one
     * ({@code legs}).
     */
    record MapBody(String id, String storageNode, String path, String mode, String transport, List<LegBody> legs) {
        String modeOrDefault() {
            return mode == null ? "rw" : mode;
        }

        String transportOrDefault() {
            return transport == null ? "" : transport;
        }
    }

    /** One leg of a mirrored device, or the leg {@code POST /weft/devices/{id}/legs} adds. */
    record LegBody(String storage, String path) {
        String storageOrEmpty() {
            return storage == null ? "" : storage;
        }

        String pathOrEmpty() {
            return path == null ? "" : path;
        }
    }

    /** {@code POST /weft/devices/{id}/unmap}: {@code force} unmaps with IO still in flight. */
    record UnmapBody(Boolean force) {
        boolean forced() {
            return Boolean.TRUE.equals(force);
        }
    }

    /** {@code POST /weft/devices/{id}/legs/{index}/resync}: {@code full} copies the whole leg. */
    record ResyncBody(Boolean full) {
        boolean isFull() {
            return Boolean.TRUE.equals(full);
        }
    }

    /** {@code POST /weft/volumes} (size defaults to 0) and {@code POST /weft/backends/resize} (size required). */
    record VolumeBody(String storageNode, String path, ByteSize size) {
        long sizeOr(long missing) {
            if (size == null && missing < 0) {
                throw new IllegalArgumentException("missing field 'size'");
            }
            return ByteSize.or(size, missing);
        }
    }

    /** {@code POST /weft/devices/{id}/compare-legs}: a size, or {@code "all"} (-1 here); 0 = the default length. */
    record CompareLegsBody(com.fasterxml.jackson.databind.JsonNode length) {
        long lengthBytes() {
            if (length == null || length.isNull()) {
                return 0;
            }
            if (length.isTextual() && "all".equals(length.asText())) {
                return -1;
            }
            try {
                return ByteSize.of(length).bytes();
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("'length' " + e.getMessage());
            }
        }
    }
}
