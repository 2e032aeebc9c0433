package io.weft.actors.drill;

import io.weft.actors.Reply;
import io.weft.actors.client.SessionActor;
import io.weft.actors.protocol.SessionCommand;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

/**
 * Cuts the client's transport to a storage node: every session of the device to that node (or one transport path
 * of each) is closed at inject and reconnected at recover. The sessions hold the cut for at most {@code holdFor}
 * by themselves, so a drill that dies never leaves a device cut off.
 */
final class CutFault implements NodeFault {
    private final String node;
    private final List<ActorRef<SessionCommand>> sessions;
    private final Integer path;
    private final Duration holdFor;
    private final Duration askTimeout;
    private final ActorSystem<?> system;
    private boolean cut; // guarded by this
    private String done = "nothing yet"; // guarded by this

    CutFault(String node, List<ActorRef<SessionCommand>> sessions, Integer path, Duration holdFor,
             Duration askTimeout, ActorSystem<?> system) {
        this.node = node;
        this.sessions = List.copyOf(sessions);
        this.path = path;
        this.holdFor = holdFor;
        this.askTimeout = askTimeout;
        this.system = system;
    }

    @Override
    public String name() {
        return "cut";
    }

    @Override
    public synchronized void inject() throws Exception {
        cut = true;
        for (ActorRef<SessionCommand> session : sessions) {
            Reply r = AskPattern.<SessionCommand, Reply>ask(session,
                            replyTo -> new SessionActor.Cut(holdFor, path, replyTo), askTimeout, system.scheduler())
                    .toCompletableFuture().get(askTimeout.toMillis(), TimeUnit.MILLISECONDS);
            if (!r.ok()) {
                throw new IllegalStateException(r.message());
            }
        }
        done = "cut " + (path == null ? "" : "path " + path + " of ") + sessions.size() + " session(s) to " + node;
    }

    @Override
    public synchronized void recover() {
        if (cut) {
            // Fire and forget: each session ends its cut and reconnects on its own; the drill times the return.
            sessions.forEach(s -> s.tell(new SessionActor.EndCut(system.ignoreRef())));
            cut = false;
            done = done + ", reconnected";
        }
    }

    @Override
    public synchronized String describe() {
        return done;
    }

    @Override
    public void close() {
        recover();
    }
}
