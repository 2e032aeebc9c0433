package io.weft.cxl;

import io.weft.core.io.BlockDevice;
import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * Child-JVM storage node for cross-process tests and the benchmark:
 * {@code BackendMain REGION NODE_ID STORE STORE_BYTES CHANNELS CREATE|REATTACH:<id> [DATA_CRC] [SLOW]}.
 * Prints {@code READY backend=<id> host=<slot>}, then serves until stdin says {@code stop} or closes. Commands:
 * {@code hold} (stop applying requests, keep them pending), {@code held} (prints {@code HELD n}), {@code release}
 * (apply the held ones, then pass everything through), {@code status}.
 */
public final class BackendMain {
    private BackendMain() {
    }

    public static void main(String[] args) throws Exception {
        Path region = Path.of(args[0]);
        long nodeId = Long.parseLong(args[1]);
        Path store = Path.of(args[2]);
        long storeBytes = Long.parseLong(args[3]);
        int channels = Integer.parseInt(args[4]);
        String mode = args[5];
        boolean dataCrc = args.length > 6 && args[6].equals("DATA_CRC");
        boolean slow = args.length > 7 && args[7].equals("SLOW");
        boolean hold = args.length > 7 && args[7].equals("HOLD");
        CxlOptions options = args.length > 8 && args[8].equals("DEFAULT_TIMING")
                ? CxlOptions.defaults() : TestSupport.fastOptions();
        StoreBlockDevice device = new StoreBlockDevice(FileBackingStore.createSparse(store, storeBytes));
        GateDevice gate = new GateDevice(slow ? new YieldingDevice(device) : device, hold);
        BlockDevice served = gate;
        try (CxlRegion r = CxlRegion.attach(region);
             CxlHost host = CxlHost.register(r, nodeId, "backend-" + nodeId, options)) {
            BackendOptions bo = BackendOptions.defaults().withChannels(channels).withCrc(true, dataCrc);
            CxlBackend backend = mode.startsWith("REATTACH:")
                    ? host.reattachBackend(Integer.parseInt(mode.substring(9)), served, bo)
                    : host.createBackend(served, store.toString(), bo);
            System.out.println("READY backend=" + backend.id() + " host=" + host.slot());
            System.out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            String line;
            while ((line = in.readLine()) != null && !line.equals("stop")) {
                if (line.equals("hold")) {
                    gate.hold();
                    System.out.println("HOLDING");
                } else if (line.equals("held")) {
                    System.out.println("HELD " + gate.held());
                } else if (line.equals("release")) {
                    System.out.println("RELEASED " + gate.release());
                } else if (line.equals("status")) {
                    System.out.println("STATUS " + host.status().render().replace('\n', '|'));
                    System.out.flush();
                }
            }
        }
        System.out.println("STOPPED");
        System.out.flush();
    }

    /** Holds every request (without applying it) until {@link #release}, then passes everything through. */
    static final class GateDevice implements BlockDevice {
        private final BlockDevice inner;
        private final java.util.List<Object[]> held = new java.util.ArrayList<>();
        private boolean holding;

        GateDevice(BlockDevice inner, boolean holding) {
            this.inner = inner;
            this.holding = holding;
        }

        @Override
        public io.weft.core.io.DeviceInfo info() {
            return inner.info();
        }

        @Override
        public synchronized void submit(io.weft.core.io.IoOp op, long offset, int length, int flags,
                                        java.nio.ByteBuffer buffer, long tag, io.weft.core.io.IoCompletion completion) {
            if (holding) {
                held.add(new Object[] {op, offset, length, flags, buffer, tag, completion});
            } else {
                inner.submit(op, offset, length, flags, buffer, tag, completion);
            }
        }

        synchronized int held() {
            return held.size();
        }

        synchronized void hold() {
            holding = true;
        }

        synchronized int release() {
            holding = false;
            int n = held.size();
            for (Object[] r : held) {
                inner.submit((io.weft.core.io.IoOp) r[0], (Long) r[1], (Integer) r[2], (Integer) r[3],
                        (java.nio.ByteBuffer) r[4], (Long) r[5], (io.weft.core.io.IoCompletion) r[6]);
            }
            held.clear();
            return n;
        }

        @Override
        public void close() {
            inner.close();
        }
    }

    /** Stretches each request a little (a yield) so a kill -9 lands with requests in flight more often. */
    static final class YieldingDevice implements BlockDevice {
        private final BlockDevice inner;

        YieldingDevice(BlockDevice inner) {
            this.inner = inner;
        }

        @Override
        public io.weft.core.io.DeviceInfo info() {
            return inner.info();
        }

        @Override
        public void submit(io.weft.core.io.IoOp op, long offset, int length, int flags, java.nio.ByteBuffer buffer,
                           long tag, io.weft.core.io.IoCompletion completion) {
            Thread.yield();
            inner.submit(op, offset, length, flags, buffer, tag, completion);
        }

        @Override
        public void close() {
            inner.close();
        }
    }

}
