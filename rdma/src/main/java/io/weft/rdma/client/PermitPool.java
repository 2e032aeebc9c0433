package io.weft.rdma.client;

import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.LockSupport;

/**
 * Lock-free permits (one per chunk of the session's pool): a bitmap claimed with compare-and-set, so submitting
 * threads never take a lock or allocate. A caller that finds none free spins, yields, then parks briefly.
 */
final class PermitPool {
    private final AtomicLongArray words;
    private final int size;

    PermitPool(int size) {
        this.size = size;
        this.words = new AtomicLongArray((size + 63) / 64);
    }

    int size() {
        return size;
    }

    /** @return a permit, or -1 when all are taken */
    int tryAcquire() {
        for (int w = 0; w < words.length(); w++) {
            long bits = words.get(w);
            while (bits != -1L) {
                int bit = Long.numberOfTrailingZeros(~bits);
                int permit = (w << 6) + bit;
                if (permit >= size) {
                    break;
                }
                if (words.compareAndSet(w, bits, bits | (1L << bit))) {
                    return permit;
                }
                bits = words.get(w);
            }
        }
        return -1;
    }

    /** @return a permit, or -1 if none came free before {@code deadlineNanos} */
    int acquire(long deadlineNanos) {
        for (int attempt = 0; ; attempt++) {
            int p = tryAcquire();
            if (p >= 0) {
                return p;
            }
            if (System.nanoTime() - deadlineNanos > 0) {
                return -1;
            }
            if (attempt < 100) {
                Thread.onSpinWait();
            } else if (attempt < 200) {
                Thread.yield();
            } else {
                LockSupport.parkNanos(20_000);
            }
        }
    }

    void release(int permit) {
        int w = permit >>> 6;
        long mask = 1L << (permit & 63);
        long bits;
        do {
            bits = words.get(w);
        } while (!words.compareAndSet(w, bits, bits & ~mask));
    }

    int inUse() {
        int n = 0;
        for (int w = 0; w < words.length(); w++) {
            n += Long.bitCount(words.get(w));
        }
        return n;
    }
}
