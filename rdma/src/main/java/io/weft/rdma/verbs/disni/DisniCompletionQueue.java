package io.weft.rdma.verbs.disni;

import com.ibm.disni.verbs.IbvCQ;
import com.ibm.disni.verbs.IbvCompChannel;
import com.ibm.disni.verbs.IbvContext;
import com.ibm.disni.verbs.IbvWC;
import com.ibm.disni.verbs.SVCPollCq;
import com.ibm.disni.verbs.SVCReqNotify;
import io.weft.rdma.verbs.CompletionHandler;
import io.weft.rdma.verbs.CompletionQueue;
import io.weft.rdma.verbs.WcStatus;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.BooleanSupplier;
import org.agrona.collections.Int2ObjectHashMap;

/**
 * A verbs completion queue with its completion channel, created on the device of the first connection bound to it.
 * DiSNI reuses its {@link IbvWC} objects between polls, so every field is copied into locals before a completion is
 * handed on. A completion channel cannot be woken from another thread, so {@link #await} sleeps at most
 * {@link #MAX_WAIT_MS} per call.
 */
final class DisniCompletionQueue implements CompletionQueue {
    static final int MAX_WAIT_MS = 1;
    private static final int OPCODE_RECV = IbvWC.IbvWcOpcode.IBV_WC_RECV.getOpcode();
    private static final int OPCODE_RECV_IMM = IbvWC.IbvWcOpcode.IBV_WC_RECV_RDMA_WITH_IMM.getOpcode();

    private final String name;
    private final int capacity;
    private final ConcurrentLinkedQueue<DisniConnection> arriving = new ConcurrentLinkedQueue<>();
    private final Int2ObjectHashMap<DisniConnection> byQpNumber = new Int2ObjectHashMap<>();
    private DisniConnection[] connections = new DisniConnection[4];
    private int count;
    private IbvContext context;
    private IbvCompChannel channel;
    private IbvCQ cq;
    private IbvWC[] completions;
    private SVCPollCq pollCall;
    private SVCReqNotify notifyCall;

    DisniCompletionQueue(String name, int capacity) {
        this.name = name;
        this.capacity = capacity;
    }

    /** Creates the verbs CQ on {@code ctx} the first time; later calls must name the same device. */
    synchronized IbvCQ bind(IbvContext ctx) throws IOException {
        if (cq == null) {
            context = ctx;
            channel = ctx.createCompChannel();
            cq = ctx.createCQ(channel, capacity, 0);
            completions = new IbvWC[64];
            for (int i = 0; i < completions.length; i++) {
                completions[i] = new IbvWC();
            }
            pollCall = cq.poll(completions, completions.length);
            notifyCall = cq.reqNotification(false);
        } else if (ctx.getCmd_fd() != context.getCmd_fd()) {
            throw new IOException("completion queue " + name + " belongs to another RDMA device");
        }
        return cq;
    }

    void attach(DisniConnection connection) {
        arriving.add(connection);
    }

    @Override
    public int poll(CompletionHandler handler, int maxCompletions) {
        int work = 0;
        DisniConnection arrived;
        while ((arrived = arriving.poll()) != null) {
            if (count == connections.length) {
                connections = Arrays.copyOf(connections, count * 2);
            }
            connections[count++] = arrived;
            byQpNumber.put(arrived.qpNumber(), arrived);
            work++;
        }
        if (pollCall != null) {
            try {
                int n = pollCall.execute().getPolls();
                for (int i = 0; i < n; i++) {
                    IbvWC wc = completions[i];
                    long wrId = wc.getWr_id();
                    int status = wc.getStatus();
                    int opcode = wc.getOpcode();
                    int byteLength = wc.getByte_len();
                    int immediate = wc.getImm_data();
                    int qpNumber = wc.getQp_num();
                    DisniConnection c = byQpNumber.get(qpNumber);
                    if (c == null || c.failed()) {
                        continue;
                    }
                    if (status != IbvWC.IbvWcStatus.IBV_WC_SUCCESS.ordinal()) {
                        c.fail(mapStatus(status), "work completion failed: " + statusName(status));
                    } else if (opcode == OPCODE_RECV) {
                        handler.onReceive(c, wrId, byteLength);
                    } else if (opcode == OPCODE_RECV_IMM) {
                        handler.onWriteWithImmediate(c, wrId, immediate, byteLength);
                    } else {
                        c.onSendCompleted(wrId);
                    }
                    work++;
                }
            } catch (IOException e) {
                throw new UncheckedIOException("polling completion queue " + name + " failed", e);
            }
        }
        for (int i = 0; i < count; i++) {
            DisniConnection c = connections[i];
            c.checkClose();
            if (c.failed()) {
                connections[i] = connections[--count];
                connections[count] = null;
                i--;
                byQpNumber.remove(c.qpNumber());
                handler.onError(c, c.failStatus(), c.failReason());
                c.destroy();
                work++;
            }
        }
        return work;
    }

    private static String statusName(int status) {
        IbvWC.IbvWcStatus[] all = IbvWC.IbvWcStatus.values();
        return status >= 0 && status < all.length ? all[status].name() : "status " + status;
    }

    static int mapStatus(int status) {
        IbvWC.IbvWcStatus[] all = IbvWC.IbvWcStatus.values();
        if (status < 0 || status >= all.length) {
            return WcStatus.TRANSPORT_ERROR;
        }
        switch (all[status]) {
            case IBV_WC_LOC_LEN_ERR: return WcStatus.LOCAL_LENGTH_ERROR;
            case IBV_WC_LOC_PROT_ERR: return WcStatus.LOCAL_PROTECTION_ERROR;
            case IBV_WC_REM_ACCESS_ERR: return WcStatus.REMOTE_ACCESS_ERROR;
            case IBV_WC_RNR_RETRY_EXC_ERR: return WcStatus.RNR_RETRY_EXCEEDED;
            case IBV_WC_WR_FLUSH_ERR: return WcStatus.WR_FLUSH_ERROR;
            case IBV_WC_REM_INV_REQ_ERR:
            case IBV_WC_REM_OP_ERR: return WcStatus.PROTOCOL_ERROR;
            default: return WcStatus.TRANSPORT_ERROR;
        }
    }

    @Override
    public void await(long timeoutNanos, BooleanSupplier pendingWork) {
        int waitMs = (int) Math.max(0, Math.min(MAX_WAIT_MS, timeoutNanos / 1_000_000));
        try {
            if (channel == null || !arriving.isEmpty() || pendingWork.getAsBoolean()) {
                if (channel == null && !pendingWork.getAsBoolean()) {
                    Thread.sleep(waitMs); // no device bound yet: nothing can complete
                }
                return;
            }
            notifyCall.execute();
            if (channel.getCqEvent(cq, waitMs)) {
                cq.ackEvents(1);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** A post is on the send queue as soon as it returns: nothing to push. */
    @Override
    public boolean flush() {
        return false;
    }

    @Override
    public void wakeup() {
        // A completion channel cannot be signalled from user space; await() never sleeps longer than MAX_WAIT_MS.
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public synchronized void close() {
        try {
            if (pollCall != null) {
                pollCall.free();
                notifyCall.free();
            }
            if (cq != null) {
                cq.destroyCQ();
                channel.destroyCompChannel();
            }
        } catch (IOException e) {
            // Device gone: the kernel released everything.
        }
        cq = null;
    }
}
