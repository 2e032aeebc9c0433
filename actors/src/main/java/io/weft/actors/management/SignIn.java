package io.weft.actors.management;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The console's sign-in state of one node process: one-time sign-in codes (the link {@code weft node} prints at
 * start, {@code /login?code=...}) and the browser sessions they open (cookie {@code weft-session-<port>}). Kept in
 * memory only: a restarted node prints a new link and its old sessions end. Thread-safe.
 */
public final class SignIn {
    /** How long a browser session lasts after sign-in (then the console signs in again). */
    public static final Duration SESSION_LIFETIME = Duration.ofHours(24);
    /** How long a sign-in code is valid if nobody uses it. Long: the link is printed at start, used much later. */
    public static final Duration CODE_LIFETIME = Duration.ofHours(24);
    /** Bounds memory whatever a signed-in client does; the oldest sessions go first. */
    static final int MAX_SESSIONS = 256;

    private final Map<String, Long> codes = new ConcurrentHashMap<>();
    private final Map<String, Long> sessions = new ConcurrentHashMap<>();

    /** A new one-time code (128 random bits). */
    public String newCode() {
        String code = ManagementToken.randomString(16);
        codes.put(code, System.nanoTime() + CODE_LIFETIME.toNanos());
        return code;
    }

    /** Uses a code up: true the first time for a code this node made and that has not expired, false after. */
    public boolean redeem(String code) {
        if (code == null) {
            return false;
        }
        Long expires = codes.remove(code);
        return expires != null && System.nanoTime() - expires < 0;
    }

    /** Opens a browser session; returns its id (the cookie's value). */
    public String newSession() {
        long now = System.nanoTime();
        sessions.values().removeIf(expires -> now - expires >= 0);
        while (sessions.size() >= MAX_SESSIONS) {
            sessions.entrySet().stream().min(Map.Entry.comparingByValue())
                    .ifPresent(oldest -> sessions.remove(oldest.getKey()));
        }
        String id = ManagementToken.randomString(32);
        sessions.put(id, now + SESSION_LIFETIME.toNanos());
        return id;
    }

    /** True for a session this node opened that has not expired or ended. */
    public boolean valid(String session) {
        if (session == null) {
            return false;
        }
        Long expires = sessions.get(session);
        return expires != null && System.nanoTime() - expires < 0;
    }

    /** Ends a session (sign-out). */
    public void end(String session) {
        if (session != null) {
            sessions.remove(session);
        }
    }

    /** The cookie's name: per port, because browsers share cookies between the ports of one host. */
    public static String cookieName(int port) {
        return "weft-session-" + port;
    }
}
