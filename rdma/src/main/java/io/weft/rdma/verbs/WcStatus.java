package io.weft.rdma.verbs;

/** Completion status codes (named after ibv_wc_status; values are Weft's own). */
public final class WcStatus {
    public static final int SUCCESS = 0;
    /** A received message was longer than the posted receive buffer. */
    public static final int LOCAL_LENGTH_ERROR = 1;
    /** A local post named memory outside a region of this connection's protection domain. */
    public static final int LOCAL_PROTECTION_ERROR = 2;
    /** A remote write named an unknown key, or fell outside the region. */
    public static final int REMOTE_ACCESS_ERROR = 3;
    /** An immediate or send arrived and no receive was posted. */
    public static final int RNR_RETRY_EXCEEDED = 4;
    /** The connection was closed locally; outstanding work is flushed. */
    public static final int WR_FLUSH_ERROR = 5;
    /** The peer went away or the link broke. */
    public static final int TRANSPORT_ERROR = 6;
    /** The peer sent something that is not valid on this transport. */
    public static final int PROTOCOL_ERROR = 7;

    private WcStatus() {
    }

    public static String name(int status) {
        switch (status) {
            case SUCCESS: return "SUCCESS";
            case LOCAL_LENGTH_ERROR: return "LOCAL_LENGTH_ERROR";
            case LOCAL_PROTECTION_ERROR: return "LOCAL_PROTECTION_ERROR";
            case REMOTE_ACCESS_ERROR: return "REMOTE_ACCESS_ERROR";
            case RNR_RETRY_EXCEEDED: return "RNR_RETRY_EXCEEDED";
            case WR_FLUSH_ERROR: return "WR_FLUSH_ERROR";
            case TRANSPORT_ERROR: return "TRANSPORT_ERROR";
            case PROTOCOL_ERROR: return "PROTOCOL_ERROR";
            default: return "STATUS_" + status;
        }
    }
}
