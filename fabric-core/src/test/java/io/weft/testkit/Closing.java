package io.weft.testkit;

import java.util.List;

/** Closing a test rig's resources in the reverse of their opening order, as a try-with-resources would. */
public final class Closing {
    private Closing() {
    }

    /**
     * Closes every resource, last first, and then throws the first failure with the later ones suppressed.
     * Null entries (a resource a failed open never made) are skipped.
     */
    public static void closeReversed(AutoCloseable... resources) throws Exception {
        Exception first = null;
        for (int i = resources.length - 1; i >= 0; i--) {
            try {
                if (resources[i] != null) {
                    resources[i].close();
                }
            } catch (Exception e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }

    /**
     * After an open failed with {@code cause}: closes what was opened, last first, each failure added to
     * {@code cause} as suppressed.
     */
    public static void closeAfterFailure(Throwable cause, List<? extends AutoCloseable> opened) {
        try {
            closeReversed(opened.toArray(new AutoCloseable[0]));
        } catch (Exception e) {
            cause.addSuppressed(e);
        }
    }
}
