package io.weft.actors.transport;

/**
 * One running data agent (a transport connection with its threads), supervised by a {@code ChannelActor}. Closing it
 * must stop its threads and complete its in-flight requests.
 */
public interface DataChannel extends AutoCloseable {
    @Override
    void close();
}
