package io.weft.core.io;

/**
 * What a client needs to know about a device before its first IO. Sizes are in bytes.
 *
 * @param size               device size; a multiple of {@code logicalBlockSize}
 * @param logicalBlockSize   minimum IO granularity (512 or 4096); offsets and lengths that are not multiples of it
 *                           are still served for byte-addressed devices when it is 1
 * @param preferredBlockSize the size that avoids read-modify-write on the store (e.g. 4096)
 * @param maxIoSize          largest single READ/WRITE payload the device accepts
 * @param readOnly           writes, discards and zeroing fail with EPERM
 * @param canFlush           FLUSH and FUA have an effect (the store has a volatile cache)
 * @param canFua             FUA is honoured per request (otherwise callers must FLUSH)
 * @param canDiscard         DISCARD frees space
 * @param canWriteZeroes     WRITE_ZEROES is cheaper than writing a zero buffer
 * @param canFastZero        WRITE_ZEROES with FAST_ZERO can succeed (zeroing is a metadata operation)
 * @param rotational         the backing medium seeks (hint for clients' schedulers)
 * @param flushCoversAllConnections a FLUSH on one connection covers writes completed on every connection to the
 *                           same device (true for a shared local store); gates NBD's CAN_MULTI_CONN
 */
public record DeviceInfo(
        long size,
        int logicalBlockSize,
        int preferredBlockSize,
        int maxIoSize,
        boolean readOnly,
        boolean canFlush,
        boolean canFua,
        boolean canDiscard,
        boolean canWriteZeroes,
        boolean canFastZero,
        boolean rotational,
        boolean flushCoversAllConnections) {

    public DeviceInfo {
        if (size < 0) {
            throw new IllegalArgumentException("size must be >= 0: " + size);
        }
        if (logicalBlockSize <= 0 || Integer.bitCount(logicalBlockSize) != 1) {
            throw new IllegalArgumentException("logicalBlockSize must be a power of two: " + logicalBlockSize);
        }
        if (preferredBlockSize < logicalBlockSize || Integer.bitCount(preferredBlockSize) != 1) {
            throw new IllegalArgumentException("preferredBlockSize must be a power of two >= logicalBlockSize: "
                    + preferredBlockSize);
        }
        if (maxIoSize < preferredBlockSize) {
            throw new IllegalArgumentException("maxIoSize must be >= preferredBlockSize: " + maxIoSize);
        }
    }

    /*
     * Capability bits: the flags above packed into one int, as the CXL backend table and the RDMA OPEN_OK message
     * carry them. The values are a wire format: append new bits, never renumber.
     */
    public static final int CAP_READ_ONLY = 1;
    public static final int CAP_FLUSH = 1 << 1;
    public static final int CAP_FUA = 1 << 2;
    public static final int CAP_DISCARD = 1 << 3;
    public static final int CAP_WRITE_ZEROES = 1 << 4;
    public static final int CAP_FAST_ZERO = 1 << 5;
    public static final int CAP_ROTATIONAL = 1 << 6;
    public static final int CAP_FLUSH_COVERS_ALL_CONNECTIONS = 1 << 7;

    /** The boolean capabilities packed into {@code CAP_*} bits. */
    public int capabilityBits() {
        return (readOnly ? CAP_READ_ONLY : 0) | (canFlush ? CAP_FLUSH : 0) | (canFua ? CAP_FUA : 0)
                | (canDiscard ? CAP_DISCARD : 0) | (canWriteZeroes ? CAP_WRITE_ZEROES : 0)
                | (canFastZero ? CAP_FAST_ZERO : 0) | (rotational ? CAP_ROTATIONAL : 0)
                | (flushCoversAllConnections ? CAP_FLUSH_COVERS_ALL_CONNECTIONS : 0);
    }

    /**
     * Rebuilds a device description from its geometry and {@link #capabilityBits()}; the constructor's checks apply,
     * so a peer's invalid geometry throws {@link IllegalArgumentException}.
     */
    public static DeviceInfo fromCapabilityBits(long size, int logicalBlockSize, int preferredBlockSize,
                                                int maxIoSize, int caps) {
        return new DeviceInfo(size, logicalBlockSize, preferredBlockSize, maxIoSize,
                (caps & CAP_READ_ONLY) != 0, (caps & CAP_FLUSH) != 0, (caps & CAP_FUA) != 0,
                (caps & CAP_DISCARD) != 0, (caps & CAP_WRITE_ZEROES) != 0, (caps & CAP_FAST_ZERO) != 0,
                (caps & CAP_ROTATIONAL) != 0, (caps & CAP_FLUSH_COVERS_ALL_CONNECTIONS) != 0);
    }

    public DeviceInfo withSize(long newSize) {
        return new DeviceInfo(newSize, logicalBlockSize, preferredBlockSize, maxIoSize, readOnly, canFlush, canFua,
                canDiscard, canWriteZeroes, canFastZero, rotational, flushCoversAllConnections);
    }

    public DeviceInfo withReadOnly(boolean ro) {
        return new DeviceInfo(size, logicalBlockSize, preferredBlockSize, maxIoSize, ro, canFlush, canFua,
                canDiscard, canWriteZeroes, canFastZero, rotational, flushCoversAllConnections);
    }
}
