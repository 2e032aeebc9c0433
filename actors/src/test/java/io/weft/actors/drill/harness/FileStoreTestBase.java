package io.weft.actors.drill.harness;

import io.weft.core.io.BlockDevice;
import io.weft.core.mirror.MirrorFixture;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

/** A drill test over one file-backed store of a given size in a fresh temporary directory, closed and deleted after. */
abstract class FileStoreTestBase {
    private final String storeName;
    private final long storeSize;
    Path dir;
    BlockDevice store;

    FileStoreTestBase(String storeName, long storeSize) {
        this.storeName = storeName;
        this.storeSize = storeSize;
    }

    @BeforeEach
    void createStore() throws Exception {
        dir = MirrorFixture.tempDir("weft-" + getClass().getSimpleName() + "-");
        store = MirrorFixture.fileLeg(dir, storeName, storeSize);
    }

    @AfterEach
    void closeAndDeleteStore() throws Exception {
        store.close();
        MirrorFixture.deleteTree(dir);
    }
}
