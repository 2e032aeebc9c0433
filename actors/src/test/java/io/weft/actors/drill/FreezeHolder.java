package io.weft.actors.drill;

import java.util.concurrent.CountDownLatch;

/**
 * A drilling node in a child JVM for {@link ProcessFaultsTest}: {@code FreezeHolder <pid>} freezes the process and
 * then waits forever, so the test can kill it mid-freeze.
 */
public final class FreezeHolder {
    private FreezeHolder() {
    }

    public static void main(String[] args) throws Exception {
        NodeFault freeze = ProcessFaults.freeze("target", Long.parseLong(args[0]), java.time.Duration.ofMinutes(10));
        freeze.prepare();
        freeze.inject();
        System.out.println("frozen " + args[0]);
        new CountDownLatch(1).await();
    }
}
