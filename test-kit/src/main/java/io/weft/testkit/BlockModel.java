package io.weft.testkit;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * A model of what a device may return, block by block, under concurrency and failures: every READ must return, for
 * each block, the last acknowledged write or one that was concurrent with the read, or a write whose outcome is
 * unknown (it failed or was cancelled, so it may or may not have landed) and that no acknowledged write has
 * overwritten since. Time is a logical clock the test advances ({@link #now()}): one tick per event.
 *
 * <p>Every write stores a self-describing block (its write id and the block index in every 16-byte word), so a READ
 * is decoded without a reference copy and anything else — poison, a torn mix, another block's data — is caught.
 * DISCARD and WRITE_ZEROES are writes of zeros (value 0, like the initial contents).
 *
 * <p>Not thread-safe: one test thread drives it.
 */
public final class BlockModel {
    private static final long NOT_COMPLETED = Long.MAX_VALUE;

    private static final class Write {
        final long id;
        final long value;
        final long submitted;
        long completed = NOT_COMPLETED;
        boolean acknowledged;

        Write(long id, long value, long submitted) {
            this.id = id;
            this.value = value;
            this.submitted = submitted;
        }
    }

    private final int blockSize;
    private final List<List<Write>> history;
    private final java.util.Map<Long, Write> byId = new java.util.HashMap<>();
    private long clock;
    private long nextId = 1;

    public BlockModel(int blockSize, int blocks) {
        if (blockSize % 16 != 0) {
            throw new IllegalArgumentException("block size must be a multiple of 16: " + blockSize);
        }
        this.blockSize = blockSize;
        this.history = new ArrayList<>(blocks);
        for (int i = 0; i < blocks; i++) {
            history.add(new ArrayList<>());
        }
    }

    public int blockSize() {
        return blockSize;
    }

    /** Advances and returns the logical clock. */
    public long now() {
        return ++clock;
    }

    /**
     * Records a write of {@code [offset, offset + length)} starting now and, for a WRITE ({@code zeros} false), fills
     * {@code buffer} from its position with the blocks' contents.
     *
     * @return the write's id, for {@link #completed}
     */
    public long beginWrite(long offset, int length, boolean zeros, ByteBuffer buffer) {
        long id = nextId++;
        long start = now();
        int first = (int) (offset / blockSize);
        int count = length / blockSize;
        Write w = new Write(id, zeros ? 0 : id, start);
        byId.put(id, w);
        for (int b = first; b < first + count; b++) {
            history.get(b).add(w);
            if (!zeros) {
                fill(buffer, buffer.position() + (b - first) * blockSize, id, b);
            }
        }
        return id;
    }

    /** The write finished now; {@code acknowledged} if its status was OK. */
    public void completed(long writeId, boolean acknowledged) {
        Write w = byId.get(writeId);
        w.completed = now();
        w.acknowledged = acknowledged;
    }

    private void fill(ByteBuffer buffer, int at, long id, int block) {
        ByteBuffer b = buffer.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < blockSize; i += 16) {
            b.putLong(at + i, id);
            b.putLong(at + i + 8, block ^ ((long) i << 32));
        }
    }

    /**
     * Checks what a READ of {@code [offset, offset + data.length)} that started at {@code start} and completed now
     * returned.
     *
     * @return null if every block is allowed, else what is wrong
     */
    public String checkRead(long offset, byte[] data, long start) {
        long end = now();
        ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        int first = (int) (offset / blockSize);
        for (int k = 0; k < data.length / blockSize; k++) {
            int block = first + k;
            int at = k * blockSize;
            long value = b.getLong(at);
            for (int i = 0; i < blockSize; i += 16) {
                long expectTag = value == 0 ? 0 : block ^ ((long) i << 32);
                if (b.getLong(at + i) != value || b.getLong(at + i + 8) != expectTag) {
                    return "block " + block + " holds no whole write (word at +" + i + " is "
                            + Long.toHexString(b.getLong(at + i)) + "/" + Long.toHexString(b.getLong(at + i + 8))
                            + "; first word says write " + value + ")";
                }
            }
            List<Long> allowed = allowed(block, start, end);
            if (!allowed.contains(value)) {
                return "block " + block + " read as write " + value + " (read from t" + start + " to t" + end
                        + "), allowed: " + allowed + "; history: " + describe(block);
            }
        }
        return null;
    }

    /** Values a read of {@code block} over [start, end] may return. */
    private List<Long> allowed(int block, long start, long end) {
        List<Write> writes = history.get(block);
        List<Long> out = new ArrayList<>();
        boolean initialOverwritten = false;
        for (Write w : writes) {
            if (w.acknowledged && w.completed < start) {
                initialOverwritten = true;
            }
        }
        if (!initialOverwritten) {
            out.add(0L);
        }
        for (Write w : writes) {
            if (w.submitted >= end) {
                continue;
            }
            boolean overwritten = false;
            if (w.completed < start) {
                for (Write w2 : writes) {
                    if (w2.acknowledged && w2.submitted > w.completed && w2.completed < start) {
                        overwritten = true;
                        break;
                    }
                }
            }
            if (!overwritten) {
                out.add(w.value);
            }
        }
        return out;
    }

    private String describe(int block) {
        StringBuilder s = new StringBuilder();
        for (Write w : history.get(block)) {
            s.append("[w").append(w.id).append(w.value == 0 ? "(zeros)" : "").append(" t").append(w.submitted)
                    .append("..").append(w.completed == NOT_COMPLETED ? "open" : "t" + w.completed)
                    .append(w.completed == NOT_COMPLETED ? "" : w.acknowledged ? " OK" : " failed").append("] ");
        }
        return s.toString();
    }
}
