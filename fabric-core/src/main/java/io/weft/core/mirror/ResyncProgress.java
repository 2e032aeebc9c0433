package io.weft.core.mirror;

/**
 * An immutable snapshot of a mirror's background copy, for the CLI's progress bar, HTTP and JMX.
 *
 * @param leg             the leg being copied to, or -1 when no resync has run yet
 * @param running         a copy is in progress
 * @param full            every region is copied (new leg) rather than just the dirty ones
 * @param regionsDone     regions copied so far in this resync
 * @param regionsTotal    regions this resync copies
 * @param bytesCopied     bytes written to the leg so far
 * @param bytesPerSecond  average copy rate since the start
 * @param etaMillis       estimated time to finish at that rate; -1 when unknown
 * @param retries         region copies repeated because a foreground write raced with them
 * @param lastError       why the last resync stopped early, or null
 */
public record ResyncProgress(int leg, boolean running, boolean full, long regionsDone, long regionsTotal,
                             long bytesCopied, long bytesPerSecond, long etaMillis, long retries, String lastError) {

    public static final ResyncProgress IDLE = new ResyncProgress(-1, false, false, 0, 0, 0, 0, -1, 0, null);

    /** Fraction done in [0, 1]; 1 when there is nothing to copy. */
    public double fraction() {
        return regionsTotal == 0 ? 1.0 : (double) regionsDone / regionsTotal;
    }
}
