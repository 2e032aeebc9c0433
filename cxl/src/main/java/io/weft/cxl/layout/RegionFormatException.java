package io.weft.cxl.layout;

import java.io.IOException;

/** A region that cannot be attached as it is: wrong magic, version, flags, geometry or checksum. */
public final class RegionFormatException extends IOException {
    public RegionFormatException(String message) {
        super(message);
    }
}
