package io.weft.core.store;

import io.weft.core.io.IoStatus;
import java.io.IOException;

/**
 * A store refused or failed a request for a reason a client can be told precisely: the {@link IoStatus} code travels
 * with the exception so {@link StoreBlockDevice} completes the request with it instead of a generic EIO.
 */
public final class StoreException extends IOException {
    private static final long serialVersionUID = 1L;

    private final int status;

    public StoreException(int status, String message) {
        super(message);
        this.status = status;
    }

    /** The {@link IoStatus} code describing the failure. */
    public int status() {
        return status;
    }

    @Override
    public String toString() {
        return "StoreException[" + IoStatus.name(status) + "]: " + getMessage();
    }
}
