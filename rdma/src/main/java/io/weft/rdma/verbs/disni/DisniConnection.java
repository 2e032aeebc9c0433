package io.weft.rdma.verbs.disni;

import com.ibm.disni.verbs.IbvContext;
import com.ibm.disni.verbs.IbvQP;
import com.ibm.disni.verbs.IbvRecvWR;
import com.ibm.disni.verbs.IbvSendWR;
import com.ibm.disni.verbs.IbvSge;
import com.ibm.disni.verbs.RdmaCmId;
import com.ibm.disni.verbs.SVCPostRecv;
import com.ibm.disni.verbs.SVCPostSend;
import io.weft.rdma.verbs.ConnectionBase;
import io.weft.rdma.verbs.MemoryRegion;
import io.weft.rdma.verbs.WcStatus;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.LinkedList;
import java.util.List;
import org.agrona.collections.Long2ObjectHashMap;

/**
 * A reliable-connection queue pair through DiSNI. DiSNI cannot change the opcode or immediate of a prepared
 * post-send in place, so one prepared {@link SVCPostSend} is kept per (opcode, immediate, has-payload) and only its
 * addresses, lengths and keys are rewritten per post; the protocol's immediates are per chunk, so the cache stays
 * bounded. DiSNI 2.0 cannot modify prepared receives at all, so receives are cached per (offset, length, wrId).
 * Posts are unsignalled except every half send queue, whose completion frees the slots before it.
 */
final class DisniConnection extends ConnectionBase {
    private static final long SIGNAL_MARK = 1L << 62;

    private final RdmaCmId id;
    private final IbvQP qp;
    private final IbvContext context;
    private final DisniProtectionDomain pd;
    private final DisniCompletionQueue cq;
    private final int sendDepth;
    private final int signalEvery;
    private final int qpNumber;
    private final Long2ObjectHashMap<SVCPostSend> sends = new Long2ObjectHashMap<>();
    private final Long2ObjectHashMap<Object[]> receives = new Long2ObjectHashMap<>();
    private int outstanding;
    private int sinceSignal;
    private boolean disconnected;
    private volatile Runnable onDestroy = () -> { };

    DisniConnection(RdmaCmId id, IbvQP qp, DisniProtectionDomain pd, DisniCompletionQueue cq, int sendDepth)
            throws IOException {
        super(asInet(id.getSource()), asInet(id.getDestination()));
        this.id = id;
        this.qp = qp;
        this.context = id.getVerbs();
        this.pd = pd;
        this.cq = cq;
        this.sendDepth = sendDepth;
        this.signalEvery = Math.max(1, sendDepth / 2);
        this.qpNumber = qp.getQp_num();
    }

    private static InetSocketAddress asInet(java.net.SocketAddress a) {
        return a instanceof InetSocketAddress ? (InetSocketAddress) a : null;
    }

    IbvContext context() {
        return context;
    }

    int qpNumber() {
        return qpNumber;
    }

    RdmaCmId cmId() {
        return id;
    }

    void peerPrivateData(byte[] data) {
        setPeerPrivateData(ByteBuffer.wrap(data));
    }

    @Override
    public boolean postSend(MemoryRegion local, int offset, int length) {
        return post(IbvSendWR.IBV_WR_SEND, local, offset, length, 0, 0, 0);
    }

    @Override
    public boolean postWrite(MemoryRegion local, int offset, int length, long remoteAddress, int rkey) {
        return post(IbvSendWR.IBV_WR_RDMA_WRITE, local, offset, length, remoteAddress, rkey, 0);
    }

    @Override
    public boolean postWriteWithImmediate(MemoryRegion local, int offset, int length, long remoteAddress, int rkey,
                                          int immediate) {
        return post(IbvSendWR.IBV_WR_RDMA_WRITE_WITH_IMM, local, offset, length, remoteAddress, rkey, immediate);
    }

    private boolean post(int opcode, MemoryRegion region, int offset, int length, long remoteAddress, int rkey,
                         int immediate) {
        if (failed()) {
            return true;
        }
        if (outstanding >= sendDepth) {
            return false;
        }
        try {
            boolean payload = length > 0;
            long key = ((long) opcode << 33) | (payload ? 1L << 32 : 0) | (immediate & 0xFFFF_FFFFL);
            SVCPostSend call = sends.get(key);
            if (call == null) {
                call = prepareSend(opcode, payload, immediate);
                sends.put(key, call);
            }
            SVCPostSend.SendWRMod wr = call.getWrMod(0);
            if (payload) {
                SVCPostSend.SgeMod sge = wr.getSgeMod(0);
                sge.setAddr(region.address() + offset);
                sge.setLength(length);
                sge.setLkey(region.lkey());
            }
            if (opcode != IbvSendWR.IBV_WR_SEND) {
                SVCPostSend.RdmaMod rdma = wr.getRdmaMod();
                rdma.setRemote_addr(remoteAddress);
                rdma.setRkey(rkey);
            }
            boolean signal = ++sinceSignal >= signalEvery;
            wr.setSend_flags(signal ? IbvSendWR.IBV_SEND_SIGNALED : 0);
            wr.setWr_id(signal ? SIGNAL_MARK | sinceSignal : 0);
            call.execute();
            outstanding++;
            if (signal) {
                sinceSignal = 0;
            }
            return true;
        } catch (IOException e) {
            fail(WcStatus.TRANSPORT_ERROR, "post failed: " + e.getMessage());
            return true;
        }
    }

    private SVCPostSend prepareSend(int opcode, boolean payload, int immediate) throws IOException {
        IbvSendWR wr = new IbvSendWR();
        wr.setOpcode(opcode);
        wr.setImm_data(immediate);
        wr.setSend_flags(0);
        LinkedList<IbvSge> sges = new LinkedList<>();
        if (payload) {
            IbvSge sge = new IbvSge();
            sges.add(sge);
        }
        wr.setSg_list(sges);
        wr.setNum_sge(sges.size());
        List<IbvSendWR> list = new LinkedList<>();
        list.add(wr);
        return qp.postSend(list, null);
    }

    /** A signalled send completed: it and the unsignalled posts before it left the send queue. */
    void onSendCompleted(long wrId) {
        if ((wrId & SIGNAL_MARK) != 0) {
            outstanding = Math.max(0, outstanding - (int) (wrId & 0xFFFF_FFFFL));
        }
    }

    @Override
    public boolean postReceive(MemoryRegion region, int offset, int length, long wrId) {
        if (failed()) {
            return true;
        }
        try {
            long key = ((long) offset << 24) ^ ((long) length << 8) ^ wrId;
            Object[] cached = receives.get(key);
            if (cached == null || cached[1] != region) {
                IbvRecvWR wr = new IbvRecvWR();
                wr.setWr_id(wrId);
                LinkedList<IbvSge> sges = new LinkedList<>();
                if (length > 0) {
                    IbvSge sge = new IbvSge();
                    sge.setAddr(region.address() + offset);
                    sge.setLength(length);
                    sge.setLkey(region.lkey());
                    sges.add(sge);
                }
                wr.setSg_list(sges);
                wr.setNum_sge(sges.size());
                List<IbvRecvWR> list = new LinkedList<>();
                list.add(wr);
                cached = new Object[] {qp.postRecv(list, null), region};
                receives.put(key, cached);
            }
            ((SVCPostRecv) cached[0]).execute();
            return true;
        } catch (IOException e) {
            fail(WcStatus.TRANSPORT_ERROR, "post receive failed: " + e.getMessage());
            return true;
        }
    }

    void fail(int status, String reason) {
        if (recordFailure(status, reason)) {
            disconnect();
        }
    }

    private synchronized void disconnect() {
        if (!disconnected) {
            disconnected = true;
            try {
                id.disconnect();
            } catch (IOException e) {
                // Already disconnected by the peer.
            }
        }
    }

    /** Owner thread: turns a close request into the failure the owner then reports. */
    void checkClose() {
        if (closeRequested() && !failed()) {
            fail(WcStatus.WR_FLUSH_ERROR, "connection closed locally");
        }
    }

    void onDestroy(Runnable action) {
        this.onDestroy = action;
    }

    /** Owner thread, after the error was delivered. */
    void destroy() {
        onDestroy.run();
        for (SVCPostSend s : sends.values()) {
            s.free();
        }
        sends.clear();
        for (Object[] r : receives.values()) {
            ((SVCPostRecv) r[0]).free();
        }
        receives.clear();
        try {
            id.destroyQP();
            id.destroyId();
        } catch (IOException e) {
            // The device or the id is already gone.
        }
    }

    DisniCompletionQueue completionQueue() {
        return cq;
    }

    DisniProtectionDomain protectionDomain() {
        return pd;
    }

    @Override
    public void close() {
        requestClose();
        disconnect();
    }

    @Override
    public String toString() {
        return "disni connection qp " + qpNumber + " " + localAddress() + " -> " + remoteAddress();
    }
}
