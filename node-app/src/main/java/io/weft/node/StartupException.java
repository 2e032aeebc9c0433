package io.weft.node;

/**
 * Start-up failed for a reason the user can fix (a file that cannot be opened, a port in use); shown without a stack
 * trace.
 */
public final class StartupException extends Exception {
    private static final long serialVersionUID = 1L;

    public StartupException(String message) {
        super(message);
    }

    public StartupException(String message, Throwable cause) {
        super(message, cause);
    }
}
