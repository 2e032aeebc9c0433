package io.weft.core.mirror;

/**
 * Leg events of a {@link MirrorBlockDevice}. Called on whichever thread noticed the event (a completion thread, the
 * watchdog, the resync thread, or the control caller), never with a lock held; implementations must be quick and must
 * not submit IO to the same device from inside the callback.
 */
public interface MirrorListener {
    /** A leg was dropped; {@code reason} is for people (status name or "no completion within N ms"). */
    default void legDropped(int leg, String reason, long nanoTime) {
    }

    /** A resync of {@code leg} started, copying {@code regions} regions. */
    default void resyncStarted(int leg, long regions, boolean full, long nanoTime) {
    }

    /** A leg became in sync (resync finished) and now serves reads. */
    default void legInSync(int leg, long nanoTime) {
    }

    /** A resync ended without bringing the leg in sync ({@code reason} says why); the leg is FAILED again. */
    default void resyncFailed(int leg, String reason, long nanoTime) {
    }
}
