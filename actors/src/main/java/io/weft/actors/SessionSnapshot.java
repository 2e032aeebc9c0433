package io.weft.actors;

import io.weft.actors.protocol.SessionCommand;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * What one session ({@code client.SessionActor}) last published about itself, as one immutable value in its
 * {@link NodeState.SessionView}: only that session replaces it ({@link NodeState.SessionView#publish}); readers take
 * one with {@link NodeState.SessionView#snapshot()} and read it whole.
 *
 * @param session        how a drill reaches the session to cut its transport; null while no session serves the view
 * @param phase          where the session stands
 * @param storageAddress the storage node's address it last opened at ("" before any)
 * @param mappingId      the storage node's id for the current mapping ("" while it has none)
 * @param lastError      why the session last lost its path or failed to open ("" before any)
 * @param transportPaths how many transport paths the current channel has (0 while it has none)
 */
public record SessionSnapshot(ActorRef<SessionCommand> session, SessionPhase phase, String storageAddress,
                              String mappingId, String lastError, int transportPaths) {

    /** Before any session has published. */
    public static final SessionSnapshot NONE = new SessionSnapshot(null, SessionPhase.SEARCHING, "", "", "", 0);

    public SessionSnapshot withSession(ActorRef<SessionCommand> next) {
        return new SessionSnapshot(next, phase, storageAddress, mappingId, lastError, transportPaths);
    }

    public SessionSnapshot withPhase(SessionPhase next) {
        return new SessionSnapshot(session, next, storageAddress, mappingId, lastError, transportPaths);
    }

    public SessionSnapshot withStorageAddress(String next) {
        return new SessionSnapshot(session, phase, next, mappingId, lastError, transportPaths);
    }

    public SessionSnapshot withMappingId(String next) {
        return new SessionSnapshot(session, phase, storageAddress, next, lastError, transportPaths);
    }

    public SessionSnapshot withLastError(String next) {
        return new SessionSnapshot(session, phase, storageAddress, mappingId, next, transportPaths);
    }

    public SessionSnapshot withTransportPaths(int next) {
        return new SessionSnapshot(session, phase, storageAddress, mappingId, lastError, next);
    }
}
