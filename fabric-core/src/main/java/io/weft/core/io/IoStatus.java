package io.weft.core.io;

/**
 * Completion status of a request: 0 for success, otherwise a small errno-like set. The values are the Linux errno
 * numbers so they read naturally in logs and map 1:1 onto the NBD protocol's error values where NBD has them.
 */
public final class IoStatus {
    public static final int OK = 0;
    /** Not permitted (e.g. a write to a read-only device or mapping). */
    public static final int EPERM = 1;
    /** The IO failed: media error, lost transport, force-stopped device, timeout. */
    public static final int EIO = 5;
    /** Out of memory or buffers. */
    public static final int ENOMEM = 12;
    /** Malformed request: bad flags, unaligned, zero length where not allowed. */
    public static final int EINVAL = 22;
    /** No space left on the backing store. */
    public static final int ENOSPC = 28;
    /** Request beyond the end of the device. */
    public static final int EOVERFLOW = 75;
    /** Operation not supported (e.g. FAST_ZERO where zeroing would be slow). */
    public static final int ENOTSUP = 95;
    /** Device is shutting down; the client should retry elsewhere or later. */
    public static final int ESHUTDOWN = 108;
    /** No path answered within the io-timeout. */
    public static final int ETIMEDOUT = 110;
    /**
     * The caller gave the request up ({@link BlockDevice#cancel}) before it finished. A cancelled WRITE may or may
     * not have reached the store, as with any timeout.
     */
    public static final int ECANCELED = 125;

    private IoStatus() {
    }

    /** Maps a status onto the NBD error set (NBD_EPERM, EIO, ENOMEM, EINVAL, ENOSPC, EOVERFLOW, ENOTSUP, ESHUTDOWN). */
    public static int toNbdError(int status) {
        switch (status) {
            case OK:
            case EPERM:
            case EIO:
            case ENOMEM:
            case EINVAL:
            case ENOSPC:
            case EOVERFLOW:
            case ENOTSUP:
            case ESHUTDOWN:
                return status;
            default:
                return EIO;
        }
    }

    /** Short symbolic name for logs, tables and error messages. */
    public static String name(int status) {
        switch (status) {
            case OK: return "OK";
            case EPERM: return "EPERM";
            case EIO: return "EIO";
            case ENOMEM: return "ENOMEM";
            case EINVAL: return "EINVAL";
            case ENOSPC: return "ENOSPC";
            case EOVERFLOW: return "EOVERFLOW";
            case ENOTSUP: return "ENOTSUP";
            case ESHUTDOWN: return "ESHUTDOWN";
            case ETIMEDOUT: return "ETIMEDOUT";
            default: return "E" + status;
        }
    }
}
