package io.weft.testkit;

import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The caller's side of the ownership rule, checked: "once a request's completion has run, no layer reads or writes
 * its buffer again". Used as the completion of every request a test submits (tag = {@link Tracked#id}). When a
 * request completes it records the status (a second completion, or one for an unknown tag, is a violation), keeps a
 * copy of what a READ returned, and then fills the buffer's payload range with {@link #POISON}. Whatever a layer
 * writes into it later is found by {@link #lateWrites()}; whatever a layer sends from it later is poison, which the
 * store then holds and a data check finds.
 *
 * <p>Thread-safe.
 */
public final class OwnershipChecker implements IoCompletion {
    public static final byte POISON = (byte) 0xDB;

    /** One request as submitted. */
    public static final class Tracked {
        public final long id;
        public final IoOp op;
        public final long offset;
        public final int length;
        public final ByteBuffer buffer;
        final int position;
        int completions;
        int status = Integer.MIN_VALUE;
        byte[] returned;

        Tracked(long id, IoOp op, long offset, int length, ByteBuffer buffer) {
            this.id = id;
            this.op = op;
            this.offset = offset;
            this.length = length;
            this.buffer = buffer;
            this.position = buffer == null ? 0 : buffer.position();
        }

        public synchronized boolean completed() {
            return completions > 0;
        }

        public synchronized int status() {
            return status;
        }

        /** What a READ that completed OK held at its completion (before the poison). */
        public synchronized byte[] returned() {
            return returned;
        }

        @Override
        public String toString() {
            return "#" + id + " " + op + " @" + offset + "+" + length;
        }
    }

    private final Map<Long, Tracked> requests = new HashMap<>();
    private final List<String> violations = new ArrayList<>();
    private final Consumer<Tracked> onDone;
    private long nextId = 1;

    public OwnershipChecker() {
        this(t -> { });
    }

    /** @param onDone runs after each first completion (after the poison), on the completing thread */
    public OwnershipChecker(Consumer<Tracked> onDone) {
        this.onDone = onDone;
    }

    /** Registers a request about to be submitted; submit it with tag {@code id} and this checker as completion. */
    public synchronized Tracked track(IoOp op, long offset, int length, ByteBuffer buffer) {
        Tracked t = new Tracked(nextId++, op, offset, length, buffer);
        requests.put(t.id, t);
        return t;
    }

    @Override
    public void onComplete(long tag, int status) {
        Tracked t;
        synchronized (this) {
            t = requests.get(tag);
            if (t == null) {
                violations.add("completion for unknown tag " + tag + " (" + IoStatus.name(status) + ")");
                return;
            }
        }
        synchronized (t) {
            t.completions++;
            if (t.completions > 1) {
                synchronized (this) {
                    violations.add(t + " completed " + t.completions + " times (first "
                            + IoStatus.name(t.status) + ", now " + IoStatus.name(status) + ")");
                }
                return;
            }
            t.status = status;
            if (t.buffer != null) {
                if (t.op == IoOp.READ && status == IoStatus.OK) {
                    t.returned = new byte[t.length];
                    t.buffer.get(t.position, t.returned, 0, t.length);
                }
                for (int i = 0; i < t.length; i++) {
                    t.buffer.put(t.position + i, POISON);
                }
            }
        }
        onDone.accept(t);
    }

    /** Requests not completed yet. */
    public synchronized List<Tracked> outstanding() {
        List<Tracked> out = new ArrayList<>();
        for (Tracked t : requests.values()) {
            if (!t.completed()) {
                out.add(t);
            }
        }
        return out;
    }

    /** One line per completed request whose buffer was written after its completion. */
    public synchronized List<String> lateWrites() {
        List<String> out = new ArrayList<>();
        for (Tracked t : requests.values()) {
            if (t.buffer == null || !t.completed()) {
                continue;
            }
            for (int i = 0; i < t.length; i++) {
                if (t.buffer.get(t.position + i) != POISON) {
                    out.add(t + " (" + IoStatus.name(t.status()) + "): its buffer was written after its completion"
                            + " (byte " + i + " is " + t.buffer.get(t.position + i) + ", not the poison)");
                    break;
                }
            }
        }
        return out;
    }

    /** Double completions and completions for unknown tags, plus {@link #lateWrites()}. */
    public synchronized List<String> violations() {
        List<String> out = new ArrayList<>(violations);
        out.addAll(lateWrites());
        return out;
    }

    /** Throws with every violation listed, if there is any. */
    public void assertNoViolations() {
        List<String> v = violations();
        if (!v.isEmpty()) {
            throw new AssertionError("buffer ownership violated:\n  " + String.join("\n  ", v));
        }
    }
}
