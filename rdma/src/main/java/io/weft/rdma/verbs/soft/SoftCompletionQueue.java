package io.weft.rdma.verbs.soft;

import io.weft.rdma.verbs.CompletionHandler;
import io.weft.rdma.verbs.CompletionQueue;
import java.io.IOException;
import java.lang.invoke.VarHandle;
import java.io.UncheckedIOException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.util.Arrays;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * The owner's view of its connections: a selector to sleep on and the list of connections to progress. Connections
 * created on other threads arrive through a queue and are registered by the owner on its next poll.
 */
final class SoftCompletionQueue implements CompletionQueue {
    private static final java.util.function.Consumer<SelectionKey> IGNORE_KEY = key -> { };
    /** Selector sleeps of every software CQ in this JVM (diagnostics; see {@link SoftwareProvider#selectorSleeps}). */
    static final java.util.concurrent.atomic.AtomicLong SLEEPS = new java.util.concurrent.atomic.AtomicLong();

    private final String name;
    private final Selector selector;
    private final ConcurrentLinkedQueue<SoftConnection> arriving = new ConcurrentLinkedQueue<>();
    private SoftConnection[] connections = new SoftConnection[4];
    private int count;
    private volatile boolean sleeping;
    private volatile boolean closed;

    SoftCompletionQueue(String name) {
        this.name = name;
        try {
            this.selector = Selector.open();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open a selector for completion queue " + name, e);
        }
    }

    void attach(SoftConnection connection) {
        arriving.add(connection);
        wakeup();
    }

    @Override
    public int poll(CompletionHandler handler, int maxCompletions) {
        int work = 0;
        SoftConnection arrived;
        while ((arrived = arriving.poll()) != null) {
            add(arrived);
            work++;
        }
        for (int i = 0; i < count; i++) {
            SoftConnection c = connections[i];
            work += c.progress(handler, maxCompletions);
            if (c.failed()) {
                remove(i--);
                handler.onError(c, c.failStatus(), c.failReason());
                work++;
            }
        }
        // Handlers may have posted on any connection of this queue: push those bytes out now.
        for (int i = 0; i < count; i++) {
            work += connections[i].flush();
        }
        return work;
    }

    @Override
    public boolean flush() {
        boolean left = !arriving.isEmpty(); // posted before it was attached: goes out on the owner's next poll
        for (int i = 0; i < count; i++) {
            SoftConnection c = connections[i];
            c.flush();
            left |= c.hasPendingSend();
        }
        return left;
    }

    private void add(SoftConnection c) {
        try {
            c.key(c.channel().register(selector, SelectionKey.OP_READ, c));
        } catch (ClosedChannelException e) {
            c.fail(io.weft.rdma.verbs.WcStatus.TRANSPORT_ERROR, "closed before it was attached");
        }
        if (count == connections.length) {
            connections = Arrays.copyOf(connections, count * 2);
        }
        connections[count++] = c;
    }

    private void remove(int index) {
        connections[index] = connections[--count];
        connections[count] = null;
    }

    @Override
    public void await(long timeoutNanos, java.util.function.BooleanSupplier pendingWork) {
        sleeping = true;
        VarHandle.fullFence();
        try {
            if (!arriving.isEmpty() || closed || pendingWork.getAsBoolean()) {
                return;
            }
            for (int i = 0; i < count; i++) {
                if (connections[i].hasBufferedFrame()) {
                    return;
                }
            }
            // The consumer form does not fill the selected-key set. (The JDK's epoll selector still boxes each ready
            // descriptor above 127 into an Integer: 16 bytes per ready connection per wake-up, JDK-internal.)
            SLEEPS.incrementAndGet();
            selector.select(IGNORE_KEY, Math.max(1, timeoutNanos / 1_000_000));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            sleeping = false;
        }
    }

    @Override
    public void wakeup() {
        // Pairs with the owner's write of 'sleeping' before its last look at its work queues (Dekker-style).
        VarHandle.fullFence();
        if (sleeping) {
            selector.wakeup();
        }
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public void close() {
        closed = true;
        try {
            selector.close();
        } catch (IOException e) {
            // Nothing to release beyond the selector itself.
        }
    }
}
