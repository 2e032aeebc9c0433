package io.weft.core.io;

import java.util.Objects;
import java.util.function.Supplier;
import org.agrona.concurrent.IdleStrategy;

/**
 * One Agrona {@link IdleStrategy} per thread, for a wait that any caller thread may enter (a slot, permit or credit
 * wait under contention, a write fence). Agrona's back-off strategies count spins and yields in fields, so one
 * instance cannot be shared by racing waiters, and creating one per wait would allocate on the IO path: each thread
 * gets its own instance on its first wait and reuses it for every later wait at this site.
 *
 * <p>Use: {@code IdleStrategy idle = WAIT.begin(); while (!condition) idle.idle();}. Call {@link #begin} once per
 * wait, only once the wait is needed (the fast path pays nothing), and keep one instance per wait site: the idle
 * calls of a wait must not run anything that enters the same site's wait again on the same thread.
 */
public final class PerThreadIdleStrategy {

    private final ThreadLocal<IdleStrategy> perThread;

    /** {@code factory} makes one thread's instance; it is called once per thread that waits here. */
    public PerThreadIdleStrategy(Supplier<? extends IdleStrategy> factory) {
        Objects.requireNonNull(factory, "factory");
        this.perThread = ThreadLocal.withInitial(factory);
    }

    /**
     * This thread's instance, reset to the start of its ladder (first spin). Allocates only on a thread's first wait.
     */
    public IdleStrategy begin() {
        IdleStrategy idle = perThread.get();
        idle.reset();
        return idle;
    }
}
