package io.weft.rdma.verbs;

/** RDMA verbs cannot be used on this machine (no libdisni, no device); the message says which and what to do. */
public final class RdmaUnavailableException extends RuntimeException {
    public RdmaUnavailableException(String message) {
        super(message);
    }
}
