package io.weft.cxl;

import org.agrona.concurrent.Agent;

/**
 * Client-side duty cycle: consumes completions of every channel of one blkdev and carries out stop requests. A
 * channel whose consumer role a submitting thread holds (assisting, see {@link ClientChannel#assist}) is skipped for
 * that cycle.
 */
final class CompletionAgent implements Agent {
    private final String name;
    private final ClientChannel[] channels;
    private final long beatIntervalNs;
    private final long ioTimeoutNs;
    private volatile int stopStatus;
    private volatile String stopReason;
    private volatile boolean stopDone;

    CompletionAgent(String name, ClientChannel[] channels, long beatIntervalNs, long ioTimeoutNs) {
        this.name = name;
        this.channels = channels;
        this.beatIntervalNs = beatIntervalNs;
        this.ioTimeoutNs = ioTimeoutNs;
    }

    void requestStop(int status, String reason) {
        stopReason = reason;
        stopStatus = status;
    }

    /** True while any channel has a request published and not yet completed. */
    boolean hasInFlight() {
        for (ClientChannel channel : channels) {
            if (channel.inFlight() > 0) {
                return true;
            }
        }
        return false;
    }

    boolean stopRequested() {
        return stopStatus != 0;
    }

    boolean stopDone() {
        return stopDone;
    }

    @Override
    public int doWork() {
        long now = System.nanoTime();
        int status = stopStatus;
        if (status != 0 && !stopDone) {
            for (ClientChannel channel : channels) {
                channel.failAsConsumer(status, stopReason);
            }
            stopDone = true;
        }
        int work = 0;
        for (ClientChannel channel : channels) {
            work += channel.pollIfFree(now, beatIntervalNs, ioTimeoutNs);
        }
        return work;
    }

    @Override
    public String roleName() {
        return name;
    }
}
