package io.weft.core.store;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoFlags;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoRequests;
import io.weft.core.io.IoStatus;
import io.weft.core.io.ReadLending;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * A {@link BlockDevice} over a {@link BackingStore}, doing each request inline on the submitting thread. For a
 * page-cache or tmpfs store that is the fastest path (no hand-off); slow stores get an {@link IoWorkerBlockDevice}
 * in front.
 *
 * <p>Lent READs ({@link ReadLending}): over a buffered regular file ({@link FileBackingStore#readMapping}) a READ
 * can be answered with a slice of a read-only mapping of the file, so the NBD server writes the page-cache pages
 * straight into the socket (one copy instead of a {@code pread} into its buffer plus the socket write, and no
 * {@code pread} system call). The loan needs no release: the mapping lives as long as anything references it.
 * Only READs of at least {@link #DEFAULT_LEND_MINIMUM} bytes are lent by default: for a small READ the copy saved is
 * a few hundred nanoseconds while first touches of mapped pages cost page faults (docs/benchmarks-nbd.md). The
 * threshold can be changed, or lending turned off, with {@link #lendReads}.
 */
public final class StoreBlockDevice implements BlockDevice, ReadLending {
    /** Default largest READ/WRITE payload: 32 MiB, NBD's customary maximum. */
    public static final int DEFAULT_MAX_IO = 32 << 20;
    /** Smallest READ lent by default (see the class comment). */
    public static final int DEFAULT_LEND_MINIMUM = 64 << 10;

    private final BackingStore store;
    private final boolean readOnly;
    private final int maxIoSize;
    private volatile DeviceInfo info;
    private volatile boolean closed;
    private volatile int lendMinimum = DEFAULT_LEND_MINIMUM;

    public StoreBlockDevice(BackingStore store) {
        this(store, store.readOnly(), DEFAULT_MAX_IO);
    }

    public StoreBlockDevice(BackingStore store, boolean readOnly, int maxIoSize) {
        this.store = store;
        this.readOnly = readOnly || store.readOnly();
        this.maxIoSize = maxIoSize;
        refreshInfo();
    }

    /** Re-reads the store's size (after a resize). */
    public void refreshInfo() {
        int lbs = store.logicalBlockSize();
        long size = store.size() - store.size() % lbs;
        boolean punch = store.canPunchHoles();
        info = new DeviceInfo(size, lbs, Math.max(4096, lbs), maxIoSize, readOnly, true, true,
                punch, true, punch, store.rotational(), true);
    }

    public BackingStore store() {
        return store;
    }

    @Override
    public DeviceInfo info() {
        return info;
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        completion.onComplete(tag, execute(op, offset, length, flags, buffer));
    }

    /** Turns lent READs on (for READs of at least {@link #DEFAULT_LEND_MINIMUM} bytes: the default) or off. */
    public StoreBlockDevice lendReads(boolean on) {
        return lendReads(on ? DEFAULT_LEND_MINIMUM : Integer.MAX_VALUE);
    }

    /** Lends READs of at least {@code minimumBytes} (1: every READ; {@link Integer#MAX_VALUE}: none). */
    public StoreBlockDevice lendReads(int minimumBytes) {
        lendMinimum = Math.max(1, minimumBytes);
        return this;
    }

    @Override
    public boolean trySubmitLend(long offset, int length, int flags, long tag, LoanCompletion completion) {
        if (length < lendMinimum || closed || !(store instanceof FileBackingStore)) {
            return false;
        }
        int status = IoRequests.check(info, IoOp.READ, offset, length, flags);
        if (status != IoStatus.OK) {
            completion.onLent(tag, status, null, 0, 0L);
            return true;
        }
        ByteBuffer mapping = ((FileBackingStore) store).readMapping(offset, length);
        if (mapping == null) {
            return false;
        }
        completion.onLent(tag, IoStatus.OK, mapping, (int) (offset - FileBackingStore.mappingStart(offset)), 0L);
        return true;
    }

    @Override
    public void releaseLoan(long loan) {
        // Nothing to give back: the mapping stays mapped while the borrower references it.
    }

    /** Does one request synchronously and returns its status. */
    public int execute(IoOp op, long offset, int length, int flags, ByteBuffer buffer) {
        if (closed) {
            return IoStatus.ESHUTDOWN;
        }
        int status = IoRequests.check(info, op, offset, length, flags);
        if (status != IoStatus.OK) {
            return status;
        }
        try {
            switch (op) {
                case READ:
                    if (buffer == null || buffer.remaining() < length) {
                        return IoStatus.EINVAL;
                    }
                    buffer.limit(buffer.position() + length);
                    store.read(offset, buffer);
                    return IoStatus.OK;
                case WRITE:
                    if (buffer == null || buffer.remaining() < length) {
                        return IoStatus.EINVAL;
                    }
                    buffer.limit(buffer.position() + length);
                    store.write(offset, buffer, IoFlags.has(flags, IoFlags.FUA));
                    return IoStatus.OK;
                case FLUSH:
                    store.flush();
                    return IoStatus.OK;
                case DISCARD:
                    store.discard(offset, length);
                    if (IoFlags.has(flags, IoFlags.FUA)) {
                        store.flush();
                    }
                    return IoStatus.OK;
                case WRITE_ZEROES:
                    store.writeZeroes(offset, length, !IoFlags.has(flags, IoFlags.NO_HOLE),
                            IoFlags.has(flags, IoFlags.FAST_ZERO));
                    if (IoFlags.has(flags, IoFlags.FUA)) {
                        store.flush();
                    }
                    return IoStatus.OK;
                default:
                    return IoStatus.EINVAL;
            }
        } catch (UnsupportedOperationException e) {
            return IoStatus.ENOTSUP;
        } catch (IOException e) {
            return statusOf(e);
        } catch (RuntimeException e) {
            // A store bug must not escape into the caller's IO loop: the request fails, the device keeps serving.
            return IoStatus.EIO;
        }
    }

    /** Maps an IO failure onto a status; ENOSPC is the one a client can act on. */
    static int statusOf(IOException e) {
        if (e instanceof StoreException) {
            return ((StoreException) e).status();
        }
        String msg = e.getMessage();
        if (msg != null && msg.contains("No space left")) {
            return IoStatus.ENOSPC;
        }
        return IoStatus.EIO;
    }

    @Override
    public long describeExtents(long offset, long length, ExtentConsumer consumer) {
        try {
            return store.describeExtents(offset, length, consumer);
        } catch (IOException e) {
            consumer.accept(length, 0);
            return length;
        }
    }

    @Override
    public void close() {
        closed = true;
        try {
            store.close();
        } catch (IOException e) {
            // Closing a channel only fails if it was already broken; nothing left to release.
        }
    }
}
