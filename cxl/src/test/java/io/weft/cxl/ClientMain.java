package io.weft.cxl;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * Child-JVM client for the kill-the-client test: {@code ClientMain REGION NODE_ID BACKEND_ID BLOCKS}. Writes
 * versioned blocks round-robin forever and prints {@code ACK <block> <version>} after each acknowledged write.
 */
public final class ClientMain {
    private ClientMain() {
    }

    public static void main(String[] args) throws Exception {
        Path regionPath = Path.of(args[0]);
        long nodeId = Long.parseLong(args[1]);
        int backendId = Integer.parseInt(args[2]);
        int blocks = Integer.parseInt(args[3]);
        CxlRegion region = CxlRegion.attach(regionPath);
        CxlHost host = CxlHost.register(region, nodeId, "client-" + nodeId, TestSupport.fastOptions());
        CxlBlockDevice dev = host.openBlkdev(backendId, BlkdevOptions.defaults());
        System.out.println("OPEN blkdev=" + dev.id() + " host=" + host.slot());
        System.out.flush();
        ByteBuffer buf = ByteBuffer.allocateDirect(Pattern.BLOCK);
        long[] versions = new long[blocks];
        for (long i = 0; ; i++) {
            int block = (int) (i % blocks);
            long v = ++versions[block];
            Pattern.fill(buf, 0, block, v);
            buf.clear();
            int status = SyncIo.run(dev, IoOp.WRITE, (long) block * Pattern.BLOCK, Pattern.BLOCK, 0, buf);
            if (status != IoStatus.OK) {
                System.out.println("ERROR " + block + " " + IoStatus.name(status));
                System.exit(2);
            }
            System.out.println("ACK " + block + " " + v);
        }
    }
}
