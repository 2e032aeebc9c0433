package io.weft.cxl;

/**
 * How a backend serves its channels.
 *
 * @param channels      channel segments to create (one per client queue); default = available processors
 * @param handlerAgents how many of the process's shared handler agents ({@link CxlOptions#handlerAgents()}) this
 *                      backend's channels are spread over, round-robin, the least loaded first (1 suits a 2-core
 *                      machine); never more threads than the process runs
 * @param entryCrc      CRC32C on every ring entry, checked on receipt
 * @param dataCrc       CRC32C on every payload, checked on receipt
 */
public record BackendOptions(int channels, int handlerAgents, boolean entryCrc, boolean dataCrc) {
    public BackendOptions {
        if (channels < 1 || channels > io.weft.cxl.layout.Records.MAX_CHANNELS_PER_BACKEND) {
            throw new IllegalArgumentException("channels must be in [1, "
                    + io.weft.cxl.layout.Records.MAX_CHANNELS_PER_BACKEND + "]: " + channels);
        }
        if (handlerAgents < 1 || handlerAgents > channels) {
            throw new IllegalArgumentException("handlerAgents must be in [1, channels]: " + handlerAgents);
        }
    }

    public static BackendOptions defaults() {
        return new BackendOptions(Math.min(Runtime.getRuntime().availableProcessors(),
                io.weft.cxl.layout.Records.MAX_CHANNELS_PER_BACKEND), 1, true, false);
    }

    public BackendOptions withChannels(int n) {
        return new BackendOptions(n, Math.min(handlerAgents, n), entryCrc, dataCrc);
    }

    public BackendOptions withCrc(boolean entries, boolean data) {
        return new BackendOptions(channels, handlerAgents, entries, data);
    }

    public BackendOptions withHandlerAgents(int n) {
        return new BackendOptions(channels, n, entryCrc, dataCrc);
    }
}
