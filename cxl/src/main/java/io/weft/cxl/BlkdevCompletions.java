package io.weft.cxl;

/**
 * The client-side work of one blkdev: consumes completions of each of its channels and carries out its stop request.
 * Not a thread of its own: a {@link CompletionAgent} shared by many blkdevs (or the blkdev's own invoker) runs
 * {@link #doWork} in its duty cycle. A channel whose consumer role a submitting thread holds (assisting, see
 * {@link ClientChannel#assist}) is skipped for that cycle.
 */
final class BlkdevCompletions {
    private final ClientChannel[] channels;
    private final long beatIntervalNs;
    private final long ioTimeoutNs;
    private volatile int stopStatus;
    private volatile String stopReason;
    private volatile boolean stopDone;
    /** Completions consumed on all channels at the last duty cycle (by this agent or by assisting submitters). */
    private long lastDelivered;

    BlkdevCompletions(ClientChannel[] channels, long beatIntervalNs, long ioTimeoutNs) {
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

    /** True while a stop was requested and not yet carried out (the agent must not sleep meanwhile). */
    boolean stopPending() {
        return stopStatus != 0 && !stopDone;
    }

    /** One duty cycle over this blkdev's channels, on the thread of the agent (or invoker) serving it. */
    int doWork(long now) {
        int status = stopStatus;
        if (status != 0 && !stopDone) {
            for (ClientChannel channel : channels) {
                channel.failAsConsumer(status, stopReason);
            }
            stopDone = true;
        }
        int work = 0;
        long delivered = 0;
        for (ClientChannel channel : channels) {
            work += channel.pollIfFree(now, beatIntervalNs, ioTimeoutNs);
            delivered += channel.consumedCount();
        }
        if (delivered != lastDelivered) {
            // Completions delivered by an assisting submitter count as progress: without this, an agent whose
            // submitters take every completion never "works", decides after 10 ms that the ones in flight are overdue
            // and parks up to 1 ms at a time, and the requests the submitter leaves behind wait out those parks.
            lastDelivered = delivered;
            work++;
        }
        return work;
    }
}
