package io.weft.core.io;

/**
 * The one place a request is checked against a device before it touches a store or leaves for a transport.
 * Every layer that receives requests from outside (NBD, CXL rings, RDMA frames) calls this; it never throws.
 */
public final class IoRequests {
    private IoRequests() {
    }

    /**
     * @return {@link IoStatus#OK} or the status to complete the request with, without doing it
     */
    public static int check(DeviceInfo info, IoOp op, long offset, long length, int flags) {
        if (op == null || (flags & ~IoFlags.ALL) != 0) {
            return IoStatus.EINVAL;
        }
        if (op == IoOp.FLUSH) {
            return IoStatus.OK;
        }
        if (info.readOnly() && op != IoOp.READ) {
            return IoStatus.EPERM;
        }
        if (offset < 0 || length < 0) {
            return IoStatus.EINVAL;
        }
        if (length == 0) {
            return IoStatus.EINVAL;
        }
        if ((op == IoOp.READ || op == IoOp.WRITE) && length > info.maxIoSize()) {
            return IoStatus.EOVERFLOW;
        }
        // offset + length may overflow a long only for hostile input; compare without adding.
        if (offset > info.size() || length > info.size() - offset) {
            return IoStatus.EOVERFLOW;
        }
        int mask = info.logicalBlockSize() - 1;
        if (((offset | length) & mask) != 0) {
            return IoStatus.EINVAL;
        }
        if (op == IoOp.WRITE_ZEROES && IoFlags.has(flags, IoFlags.FAST_ZERO) && !info.canFastZero()) {
            return IoStatus.ENOTSUP;
        }
        return IoStatus.OK;
    }
}
