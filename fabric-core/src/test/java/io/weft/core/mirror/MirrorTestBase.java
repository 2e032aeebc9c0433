package io.weft.core.mirror;

import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

/**
 * What every mirror test that builds one mirror over file legs sets up: a fresh temporary directory for the legs and
 * the bitmap, and the mirror under test, closed (if the test made one) before the directory is deleted.
 */
abstract class MirrorTestBase {
    Path dir;
    MirrorBlockDevice mirror;

    @BeforeEach
    void createLegDirectory() throws Exception {
        dir = MirrorFixture.tempDir("weft-" + getClass().getSimpleName() + "-");
    }

    @AfterEach
    void closeMirrorAndDeleteLegs() throws Exception {
        if (mirror != null) {
            mirror.close();
        }
        MirrorFixture.deleteTree(dir);
    }
}
