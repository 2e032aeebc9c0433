package io.weft.core.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoOp;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A client that did not agree to the advertised block sizes (NBD_OPT_EXPORT_NAME, or NBD_OPT_GO without an
 * NBD_INFO_BLOCK_SIZE request) is on the protocol's defaults, minimum block size 1: the server reads and writes at
 * any byte offset, by read-modify-write where the device needs 4 KiB blocks. A client that agreed gets EINVAL.
 */
@Timeout(120)
class NbdDefaultBlockSizeTest {
    private static final long SIZE = 16L << 20;
    private static final int BLOCK = 4096;
    private static final int EINVAL = 22;
    private static final long SEED = Long.getLong("weft.test.seed", System.nanoTime());

    private interface Connect {
        void handshake(RawNbdClient c) throws Exception;
    }

    @Test
    void exportNameClientReadsAndWritesAtAnyByteOffset() throws Exception {
        anyByteOffset(c -> c.exportName("vol0"));
    }

    @Test
    void goWithoutBlockSizeRequestGetsTheDefaults() throws Exception {
        anyByteOffset(c -> c.goWithInfos("vol0"));
    }

    private void anyByteOffset(Connect connect) throws Exception {
        System.out.println("NbdDefaultBlockSizeTest seed " + SEED + " (replay: -Dweft.test.seed=" + SEED + ")");
        Random random = new Random(SEED);
        GeometryDevice[] holder = new GeometryDevice[1];
        try (NbdFixture fx = new NbdFixture(SIZE, NbdServerOptions.defaults(), d -> {
            holder[0] = new GeometryDevice(d, BLOCK, 64 << 10);
            return holder[0];
        })) {
            byte[] model = new byte[256 << 10];
            random.nextBytes(model);
            try (RawNbdClient c = RawNbdClient.connect(fx.unixAddress())) {
                connect.handshake(c);
                for (int at = 0; at < model.length; at += 64 << 10) {
                    c.write(at, Arrays.copyOfRange(model, at, at + (64 << 10)), 1);
                }
                // The measured case: a READ of 4096 bytes at offset 1.
                assertArrayEquals(Arrays.copyOfRange(model, 1, 4097), c.read(1, 4096, 2), "READ at offset 1");

                long handle = 10;
                for (int i = 0; i < 200; i++) {
                    int length = 1 + random.nextInt(i % 10 == 0 ? 60_000 : 9000);
                    int offset = random.nextInt(model.length - length);
                    if (random.nextBoolean()) {
                        byte[] data = new byte[length];
                        random.nextBytes(data);
                        c.write(offset, data, handle++);
                        System.arraycopy(data, 0, model, offset, length);
                    } else {
                        assertArrayEquals(Arrays.copyOfRange(model, offset, offset + length),
                                c.read(offset, length, handle++), "READ of " + length + " at " + offset);
                    }
                }
                // Unaligned WRITE_ZEROES: exactly its bytes become zero. Unaligned TRIM: nothing outside changes.
                assertEquals(0, c.command(NbdProtocol.CMD_WRITE_ZEROES, 0, 1000, 9000, handle++));
                Arrays.fill(model, 1000, 10_000, (byte) 0);
                assertEquals(0, c.command(NbdProtocol.CMD_WRITE_ZEROES, 0, 20_001, 100, handle++));
                Arrays.fill(model, 20_001, 20_101, (byte) 0);
                assertEquals(0, c.command(NbdProtocol.CMD_TRIM, 0, 40_000, 3 * BLOCK, handle++));
                assertEquals(0, c.command(NbdProtocol.CMD_TRIM, 0, 70_001, 100, handle++), "TRIM inside a block");
                assertEquals(0, c.command(NbdProtocol.CMD_CACHE, 0, 3, 5, handle++), "CACHE at offset 3");
                byte[] all = readAll(c, model.length);
                assertArrayEquals(Arrays.copyOfRange(model, 0, 40_000), Arrays.copyOfRange(all, 0, 40_000));
                assertArrayEquals(Arrays.copyOfRange(model, 40_000 + 3 * BLOCK, model.length),
                        Arrays.copyOfRange(all, 40_000 + 3 * BLOCK, model.length));
                assertArrayEquals(Arrays.copyOfRange(model, 0, 40_000), fx.fileBytes(0, 40_000), "on the store");
            }
            for (GeometryDevice.Seen s : holder[0].seen(IoOp.WRITE)) {
                assertTrue(s.offset() % BLOCK == 0 && s.length() % BLOCK == 0, "the device saw only whole blocks");
            }
        }
    }

    @Test
    void pipelinedUnalignedWritesSharingBlocksKeepEachOthersBytes() throws Exception {
        ReorderingDevice[] holder = new ReorderingDevice[1];
        try (NbdFixture fx = new NbdFixture(SIZE, NbdServerOptions.defaults(), d -> {
            // Completions on another thread, so every read-modify-write waits for the requests before it.
            holder[0] = new ReorderingDevice(new GeometryDevice(d, BLOCK, 64 << 10), 1);
            return holder[0];
        })) {
            int n = 100;
            byte[] model = new byte[4 * BLOCK];
            Random random = new Random(3);
            try (RawNbdClient c = RawNbdClient.connect(fx.unixAddress())) {
                c.exportName("vol0");
                // Writes of 100 bytes, 60 bytes apart from each other's ends: neighbours share a block, never a byte.
                ByteBuffer burst = ByteBuffer.allocate(n * (28 + 100));
                for (int i = 0; i < n; i++) {
                    byte[] data = new byte[100];
                    random.nextBytes(data);
                    int offset = i * 160 + 7;
                    System.arraycopy(data, 0, model, offset, 100);
                    NbdRequestHeader.encode(burst, burst.position(), 0, NbdProtocol.CMD_WRITE, 100 + i, offset, 100);
                    burst.position(burst.position() + 28).put(data);
                }
                c.write(burst.flip());
                for (int i = 0; i < n; i++) {
                    assertEquals(0, c.readReply(0).error());
                }
                byte[] back = c.read(0, model.length, 1);
                for (int i = 0; i < n; i++) {
                    int offset = i * 160 + 7;
                    assertArrayEquals(Arrays.copyOfRange(model, offset, offset + 100),
                            Arrays.copyOfRange(back, offset, offset + 100), "bytes of write " + i);
                }
            }
        }
    }

    @Test
    void aClientThatAgreedToTheBlockSizesGetsEinvalWhenMisaligned() throws Exception {
        try (NbdFixture fx = new NbdFixture(SIZE, NbdServerOptions.defaults(),
                d -> new GeometryDevice(d, BLOCK, 64 << 10))) {
            try (RawNbdClient c = RawNbdClient.connect(fx.unixAddress())) {
                c.goWithInfos("vol0", NbdProtocol.INFO_BLOCK_SIZE);
                c.sendRequest(0, NbdProtocol.CMD_READ, 1, 1, BLOCK, null);
                assertEquals(EINVAL, c.readReply(0).error(), "misaligned READ");
                c.sendRequest(0, NbdProtocol.CMD_WRITE, 2, 512, 512, new byte[512]);
                assertEquals(EINVAL, c.readReply(0).error(), "misaligned WRITE");
                assertEquals(EINVAL, c.command(NbdProtocol.CMD_TRIM, 0, 1, BLOCK, 3), "misaligned TRIM");
                assertEquals(BLOCK, c.read(0, BLOCK, 4).length, "aligned requests still work");
            }
        }
    }

    @Test
    void unalignedReadWiderThanTheDeviceTakesIsReadInParts() throws Exception {
        GeometryDevice[] holder = new GeometryDevice[1];
        try (NbdFixture fx = new NbdFixture(SIZE, NbdServerOptions.defaults(), d -> {
            holder[0] = new GeometryDevice(d, BLOCK, 64 << 10);
            return holder[0];
        })) {
            byte[] model = new byte[256 << 10];
            new Random(5).nextBytes(model);
            try (RawNbdClient c = RawNbdClient.connect(fx.unixAddress())) {
                c.exportName("vol0");
                for (int at = 0; at < model.length; at += 64 << 10) {
                    c.write(at, Arrays.copyOfRange(model, at, at + (64 << 10)), 1);
                }
                holder[0].clearSeen();
                // 64 KiB (the maximum) at offset 100: covering blocks are 68 KiB, more than one device request.
                assertArrayEquals(Arrays.copyOfRange(model, 100, 100 + (64 << 10)), c.read(100, 64 << 10, 2));
                assertEquals(2, holder[0].seen(IoOp.READ).size(), "parts: " + holder[0].seen(IoOp.READ));
                byte[] data = new byte[64 << 10];
                new Random(6).nextBytes(data);
                c.write(5000, data, 3);
                System.arraycopy(data, 0, model, 5000, data.length);
                assertArrayEquals(model, readAll(c, model.length));
            }
        }
    }

    private static byte[] readAll(RawNbdClient c, int length) throws Exception {
        byte[] all = new byte[length];
        for (int at = 0; at < length; at += 64 << 10) {
            System.arraycopy(c.read(at, 64 << 10, 9), 0, all, at, 64 << 10);
        }
        return all;
    }
}
