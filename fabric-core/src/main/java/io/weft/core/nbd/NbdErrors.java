package io.weft.core.nbd;

import io.weft.core.io.IoStatus;
import java.nio.charset.StandardCharsets;

/** Maps Weft statuses onto NBD error values and pre-encoded messages for ERROR chunks (no per-request allocation). */
final class NbdErrors {
    private NbdErrors() {
    }

    private static final byte[] EPERM_MSG = ascii("operation not permitted (read-only export)");
    private static final byte[] EIO_MSG = ascii("input/output error");
    private static final byte[] ENOMEM_MSG = ascii("out of memory");
    private static final byte[] EINVAL_MSG = ascii("invalid request (bad flags, alignment, length or range)");
    private static final byte[] ENOSPC_MSG = ascii("no space left (write beyond the end of the export?)");
    private static final byte[] EOVERFLOW_MSG = ascii("value too large");
    private static final byte[] ENOTSUP_MSG = ascii("operation not supported (zeroing would not be fast)");
    private static final byte[] ESHUTDOWN_MSG = ascii("server is shutting down");
    static final int MAX_MESSAGE = 64;

    private static byte[] ascii(String s) {
        byte[] b = s.getBytes(StandardCharsets.US_ASCII);
        if (b.length > MAX_MESSAGE) {
            throw new IllegalStateException("message too long: " + s);
        }
        return b;
    }

    /**
     * NBD error for a failed device status. ENOTSUP is only meaningful for a fast-zero request; the protocol asks
     * servers not to return it otherwise.
     */
    static int toNbd(int status, boolean fastZeroRequest) {
        int e = IoStatus.toNbdError(status);
        if (e == NbdProtocol.ENOTSUP && !fastZeroRequest) {
            return NbdProtocol.EINVAL;
        }
        if (e == NbdProtocol.EOVERFLOW) {
            return NbdProtocol.EINVAL;
        }
        return e == 0 ? NbdProtocol.EIO : e;
    }

    static byte[] message(int nbdError) {
        switch (nbdError) {
            case NbdProtocol.EPERM: return EPERM_MSG;
            case NbdProtocol.ENOMEM: return ENOMEM_MSG;
            case NbdProtocol.EINVAL: return EINVAL_MSG;
            case NbdProtocol.ENOSPC: return ENOSPC_MSG;
            case NbdProtocol.EOVERFLOW: return EOVERFLOW_MSG;
            case NbdProtocol.ENOTSUP: return ENOTSUP_MSG;
            case NbdProtocol.ESHUTDOWN: return ESHUTDOWN_MSG;
            default: return EIO_MSG;
        }
    }
}
