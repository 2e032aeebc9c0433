package io.weft.actors.drill;

import io.weft.actors.DeviceSnapshot;
import io.weft.actors.DeviceState;
import io.weft.actors.NodeState;
import java.util.Locale;

/**
 * A kill of a plain (single-backend) device's storage node: recovery restarts the node, then waits until the
 * device has reconnected to it (its reconnect count moved past the one at inject and it is ready), bounded by
 * the resync timeout. Meanwhile the workload's IO queues in the device (up to {@code weft.client.io-timeout}).
 */
final class AwaitReconnect implements NodeFault {
    private final NodeFault inner;
    private final NodeState.DeviceEntry entry;
    private final long timeoutMillis;
    private volatile long reconnectsAtInject;
    private volatile String waited = "";

    AwaitReconnect(NodeFault inner, NodeState.DeviceEntry entry, long timeoutMillis) {
        this.inner = inner;
        this.entry = entry;
        this.timeoutMillis = timeoutMillis;
    }

    @Override
    public String name() {
        return inner.name();
    }

    @Override
    public void prepare() throws Exception {
        inner.prepare();
    }

    @Override
    public void inject() throws Exception {
        reconnectsAtInject = entry.snapshot().reconnects();
        inner.inject();
    }

    @Override
    public void recover() throws Exception {
        inner.recover();
        long start = System.nanoTime();
        long deadline = start + java.util.concurrent.TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        while (!reconnected() && System.nanoTime() < deadline) {
            java.util.concurrent.locks.LockSupport.parkNanos(5_000_000L); // polling the device's state
        }
        boolean back = reconnected();
        waited = String.format(Locale.ROOT, "; device %s %s %.1f s after the restart", entry.spec.deviceId(),
                back ? "reconnected" : "NOT reconnected", (System.nanoTime() - start) / 1e9);
    }

    /** Reconnected since the inject and ready, in one published moment. */
    private boolean reconnected() {
        DeviceSnapshot now = entry.snapshot();
        return now.reconnects() > reconnectsAtInject && now.state() == DeviceState.READY;
    }

    @Override
    public boolean legReturns() {
        return inner.legReturns();
    }

    @Override
    public String describe() {
        return inner.describe() + waited;
    }

    @Override
    public void close() {
        inner.close();
    }
}
