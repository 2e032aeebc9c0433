package io.weft.rdma.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class PermitPoolTest {
    @Test
    void handsOutEachPermitOnceAndReusesReleasedOnes() {
        PermitPool pool = new PermitPool(70);
        Set<Integer> seen = new HashSet<>();
        for (int i = 0; i < 70; i++) {
            int p = pool.tryAcquire();
            assertTrue(p >= 0 && p < 70 && seen.add(p), "permit " + p);
        }
        assertEquals(-1, pool.tryAcquire());
        assertEquals(-1, pool.acquire(System.nanoTime()));
        pool.release(65);
        assertEquals(65, pool.tryAcquire());
        assertEquals(70, pool.inUse());
    }
}
