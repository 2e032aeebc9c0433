package io.weft.rdma.verbs;

/**
 * Queue sizes of one connection.
 *
 * @param maxMessageSize largest single post (write payload or send) in bytes
 * @param sendQueueDepth posts that may be outstanding before {@code post*} returns false
 * @param recvQueueDepth receives that may be posted at once
 */
public record ConnectionOptions(int maxMessageSize, int sendQueueDepth, int recvQueueDepth) {
    public ConnectionOptions {
        if (maxMessageSize <= 0 || sendQueueDepth <= 0 || recvQueueDepth <= 0) {
            throw new IllegalArgumentException("connection options must be positive: " + maxMessageSize + ", "
                    + sendQueueDepth + ", " + recvQueueDepth);
        }
    }
}
