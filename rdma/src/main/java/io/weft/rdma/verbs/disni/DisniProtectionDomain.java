package io.weft.rdma.verbs.disni;

import com.ibm.disni.verbs.IbvContext;
import com.ibm.disni.verbs.IbvPd;
import io.weft.rdma.verbs.MemoryRegion;
import io.weft.rdma.verbs.ProtectionDomain;
import io.weft.rdma.verbs.VerbsConnection;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * A verbs protection domain, allocated on the device of the first connection (or {@link #bindTo}); regions
 * registered before that are registered with the device when the domain binds.
 */
final class DisniProtectionDomain implements ProtectionDomain {
    private final List<DisniMemoryRegion> regions = new ArrayList<>();
    private IbvContext context;
    private IbvPd pd;

    synchronized IbvPd bind(IbvContext ctx) throws IOException {
        if (pd == null) {
            context = ctx;
            pd = ctx.allocPd();
            for (DisniMemoryRegion r : regions) {
                r.register(pd);
            }
        } else if (ctx.getCmd_fd() != context.getCmd_fd()) {
            throw new IOException("this protection domain is bound to another RDMA device; one session uses one"
                    + " device per side");
        }
        return pd;
    }

    @Override
    public void bindTo(VerbsConnection connection) throws IOException {
        bind(((DisniConnection) connection).context());
    }

    @Override
    public synchronized MemoryRegion register(ByteBuffer directBuffer, int access) throws IOException {
        if (!directBuffer.isDirect()) {
            throw new IllegalArgumentException("only direct buffers can be registered");
        }
        DisniMemoryRegion region = new DisniMemoryRegion(directBuffer, access, this);
        regions.add(region);
        if (pd != null) {
            region.register(pd);
        }
        return region;
    }

    synchronized void forget(DisniMemoryRegion region) {
        regions.remove(region);
    }

    @Override
    public synchronized void close() {
        for (DisniMemoryRegion r : new ArrayList<>(regions)) {
            r.close();
        }
        if (pd != null) {
            try {
                pd.deallocPd();
            } catch (Exception e) {
                // The device may already be gone; nothing else holds the domain.
            }
            pd = null;
        }
    }
}
