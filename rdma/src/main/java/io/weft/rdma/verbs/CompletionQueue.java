package io.weft.rdma.verbs;

/**
 * Completions of every connection bound to this queue. One thread at a time (the owner: an agent, or a submitter that
 * took the agent's role) polls it and posts on its connections; see {@link VerbsProvider} for the threading rule.
 */
public interface CompletionQueue extends AutoCloseable {

    /**
     * Moves the queue forward: sends what was posted, receives what arrived and delivers up to {@code maxCompletions}
     * completions to {@code handler}.
     *
     * @return work done (completions delivered plus other progress); 0 means idle
     */
    int poll(CompletionHandler handler, int maxCompletions);

    /**
     * Blocks the owner until something may be ready, {@link #wakeup()} is called or {@code timeoutNanos} pass.
     * Used by idle strategies so an idle node does not burn CPU. {@code pendingWork} is consulted after the queue
     * has announced that it is going to sleep, so work queued by a thread that saw no sleeper is never missed.
     */
    void await(long timeoutNanos, java.util.function.BooleanSupplier pendingWork);

    /**
     * Pushes out what was posted on this queue's connections, without delivering completions: for the thread that
     * posts on a connection between two polls of the owner (the owner role is taken in turn, see ClientQueue).
     *
     * @return true when something is left that only a later {@link #poll} can send (a connection not attached to
     *         the queue yet, a socket that took only part of the bytes)
     */
    boolean flush();

    /** Ends an {@link #await} early; cheap when the owner is not waiting. Any thread. */
    void wakeup();

    String name();

    @Override
    void close();
}
