package io.weft.cxl.cyclefixture.left;

import io.weft.cxl.cyclefixture.right.RightOfCycle;

/**
 * Test fixture for {@code ArchitectureTest}: one side of a package cycle ({@code left} -> {@code right} ->
 * {@code left}).
 */
public final class LeftOfCycle {
    public RightOfCycle partner() {
        return new RightOfCycle();
    }
}
