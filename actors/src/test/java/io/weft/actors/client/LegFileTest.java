package io.weft.actors.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.actors.MapSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LegFileTest {
    @TempDir
    Path tmp;

    @Test
    void positionsRoundTripWithGapsAndPathsContainingColons() throws Exception {
        LegFile file = new LegFile(tmp.resolve("m0.legs"));
        assertNull(file.read(), "no file yet");
        MapSpec.Leg[] legs = {null, new MapSpec.Leg("b", "dir/x:y.img"), new MapSpec.Leg("c", "m0.img")};
        file.write(legs);
        assertArrayEquals(legs, file.read());
        assertTrue(Files.readString(file.path()).contains("\n1 b:dir/x:y.img\n2 c:m0.img\n"));
        assertTrue(Files.notExists(tmp.resolve("m0.legs.tmp")), "the temporary file was renamed");
    }

    @Test
    void malformedLinesAreRefusedRatherThanGuessed() throws Exception {
        LegFile file = new LegFile(tmp.resolve("m1.legs"));
        for (String bad : new String[] {"3 a:x.img", "x a:x.img", "0 a:x.img\n0 b:x.img", "1", "-1 a:x",
                "0 nocolon"}) {
            Files.writeString(file.path(), bad + "\n");
            assertThrows(RuntimeException.class, () -> {
                try {
                    file.read();
                } catch (IOException e) {
                    throw new IllegalStateException(e);
                }
            }, bad);
        }
    }
}
