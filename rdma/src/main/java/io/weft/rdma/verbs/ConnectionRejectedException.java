package io.weft.rdma.verbs;

import java.io.IOException;

/** The peer refused the connection with a reason code (the software provider carries it; DiSNI cannot). */
public final class ConnectionRejectedException extends IOException {
    private final int reason;

    public ConnectionRejectedException(String message, int reason) {
        super(message);
        this.reason = reason;
    }

    public int reason() {
        return reason;
    }
}
