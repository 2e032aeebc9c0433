package io.weft.actors.drill;

import io.weft.actors.drill.harness.DrillFault;

/**
 * A drill fault on a real node that must never outlive its drill: {@link #close()} undoes whatever
 * {@link #inject()} did and {@link #recover()} has not (a SIGCONT, a reconnect, a restart). The drill runner calls
 * it when the drill ends however it ends, and the {@link DrillService} calls it when it stops. Idempotent and safe
 * from any thread.
 */
public interface NodeFault extends DrillFault, AutoCloseable {
    /** What the fault did so far, for the drill's status ("SIGSTOP sent to pid 123", ...). */
    String describe();

    @Override
    void close();
}
