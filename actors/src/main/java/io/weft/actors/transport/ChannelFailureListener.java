package io.weft.actors.transport;

/** How a data agent tells its supervising actor that it died (connection reset, peer heartbeat lost, fenced). */
@FunctionalInterface
public interface ChannelFailureListener {
    void channelFailed(Throwable cause);
}
