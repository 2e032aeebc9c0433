package io.weft.cxl.cyclefixture.right;

import io.weft.cxl.cyclefixture.left.LeftOfCycle;

/** Test fixture for {@code ArchitectureTest}: the other side of the package cycle. */
public final class RightOfCycle {
    public LeftOfCycle partner() {
        return new LeftOfCycle();
    }
}
