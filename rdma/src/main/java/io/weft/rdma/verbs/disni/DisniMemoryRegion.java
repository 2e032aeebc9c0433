package io.weft.rdma.verbs.disni;

import com.ibm.disni.verbs.IbvMr;
import com.ibm.disni.verbs.IbvPd;
import io.weft.rdma.verbs.Access;
import io.weft.rdma.verbs.MemoryRegion;
import io.weft.rdma.verbs.ProtectionDomain;
import java.io.IOException;
import java.nio.ByteBuffer;
import org.agrona.BufferUtil;

/** A region registered with ibv_reg_mr once its domain is bound to a device. */
final class DisniMemoryRegion implements MemoryRegion {
    private final ByteBuffer buffer;
    private final long address;
    private final int access;
    private final DisniProtectionDomain pd;
    private volatile IbvMr mr;

    DisniMemoryRegion(ByteBuffer buffer, int access, DisniProtectionDomain pd) {
        this.buffer = buffer.duplicate().clear();
        this.address = BufferUtil.address(buffer);
        this.access = access;
        this.pd = pd;
    }

    void register(IbvPd ibvPd) throws IOException {
        int flags = IbvMr.IBV_ACCESS_LOCAL_WRITE;
        if ((access & Access.REMOTE_WRITE) != 0) {
            flags |= IbvMr.IBV_ACCESS_REMOTE_WRITE;
        }
        mr = ibvPd.regMr(buffer, flags).execute().free().getMr();
    }

    private IbvMr registered() {
        IbvMr m = mr;
        if (m == null) {
            throw new IllegalStateException("region not registered yet: its protection domain has no device until"
                    + " the first connection");
        }
        return m;
    }

    @Override
    public ByteBuffer buffer() {
        return buffer;
    }

    @Override
    public long address() {
        return address;
    }

    @Override
    public int length() {
        return buffer.capacity();
    }

    @Override
    public int lkey() {
        return registered().getLkey();
    }

    @Override
    public int rkey() {
        return registered().getRkey();
    }

    @Override
    public ProtectionDomain protectionDomain() {
        return pd;
    }

    @Override
    public void close() {
        IbvMr m = mr;
        mr = null;
        pd.forget(this);
        if (m != null) {
            try {
                m.deregMr().execute().free();
            } catch (IOException e) {
                // Deregistration fails only when the device is gone, which releases the region anyway.
            }
        }
    }
}
