package io.weft.rdma.verbs.disni;

import com.ibm.disni.verbs.IbvCQ;
import com.ibm.disni.verbs.IbvContext;
import com.ibm.disni.verbs.IbvPd;
import com.ibm.disni.verbs.IbvQP;
import com.ibm.disni.verbs.IbvQPInitAttr;
import com.ibm.disni.verbs.RdmaCm;
import com.ibm.disni.verbs.RdmaCmEvent;
import com.ibm.disni.verbs.RdmaCmId;
import com.ibm.disni.verbs.RdmaConnParam;
import com.ibm.disni.verbs.RdmaEventChannel;
import io.weft.rdma.verbs.CompletionQueue;
import io.weft.rdma.verbs.ConnectionOptions;
import io.weft.rdma.verbs.ConnectionRequestHandler;
import io.weft.rdma.verbs.ConnectionSetup;
import io.weft.rdma.verbs.ProtectionDomain;
import io.weft.rdma.verbs.RdmaUnavailableException;
import io.weft.rdma.verbs.VerbsConnection;
import io.weft.rdma.verbs.VerbsListener;
import io.weft.rdma.verbs.VerbsProvider;
import io.weft.rdma.verbs.WcStatus;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.agrona.BufferUtil;
import org.agrona.concurrent.UnsafeBuffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Real verbs through DiSNI (libdisni + libibverbs + librdmacm) on an RNIC or Soft-RoCE. One connection-manager
 * thread serves every outgoing connection's events; each listener has its own. Construct only after
 * {@link DisniProbe#probe()} said yes: without libdisni the constructor throws {@link RdmaUnavailableException}.
 */
public final class DisniProvider implements VerbsProvider {
    private static final Logger LOG = LoggerFactory.getLogger(DisniProvider.class);
    private static final int CQ_CAPACITY = 4096;
    private static final int CM_POLL_MS = 100;

    /** One connection-manager event, copied out before DiSNI's event is acknowledged. */
    record CmEvent(RdmaCmEvent.EventType type, int status, byte[] privateData) {
    }

    private final RdmaEventChannel activeChannel;
    private final Map<RdmaCmId, BlockingQueue<CmEvent>> connecting = new ConcurrentHashMap<>();
    private final Map<RdmaCmId, DisniConnection> established = new ConcurrentHashMap<>();
    private final List<DisniListener> listeners = new ArrayList<>();
    private final Thread cmThread;
    private volatile boolean running = true;

    public DisniProvider() {
        DisniProbe.Result probe = DisniProbe.probe();
        if (!probe.available()) {
            throw new RdmaUnavailableException(probe.reason());
        }
        try {
            activeChannel = RdmaEventChannel.createEventChannel();
        } catch (IOException e) {
            throw new RdmaUnavailableException(DisniProbe.explain(e));
        }
        cmThread = new Thread(() -> cmLoop(activeChannel, this::onActiveEvent), "weft-rdma-disni-cm");
        cmThread.setDaemon(true);
        cmThread.start();
    }

    @Override
    public String name() {
        return "disni";
    }

    @Override
    public ProtectionDomain createProtectionDomain() {
        return new DisniProtectionDomain();
    }

    @Override
    public CompletionQueue createCompletionQueue(String name) {
        return new DisniCompletionQueue(name, CQ_CAPACITY);
    }

    @Override
    public synchronized VerbsListener listen(InetSocketAddress address, ConnectionRequestHandler handler)
            throws IOException {
        DisniListener l = new DisniListener(this, address, handler);
        listeners.add(l);
        return l;
    }

    /** Runs a connection-manager loop until the provider closes. */
    void cmLoop(RdmaEventChannel channel, CmEventConsumer consumer) {
        while (running) {
            try {
                RdmaCmEvent event = channel.getCmEvent(CM_POLL_MS);
                if (event == null) {
                    continue;
                }
                RdmaCmEvent.EventType[] types = RdmaCmEvent.EventType.values();
                int code = event.getEvent();
                RdmaCmEvent.EventType type = code >= 0 && code < types.length ? types[code] : null;
                RdmaCmId id = event.getConnIdPriv();
                CmEvent copy = new CmEvent(type, event.getStatus(), privateData(event.getConn()));
                RdmaCmId listenId = event.getListenIdPriv();
                event.ackEvent();
                if (type != null) {
                    consumer.accept(id, listenId, copy);
                }
            } catch (IOException | RuntimeException e) {
                if (running) {
                    LOG.warn("RDMA connection-manager loop error", e);
                }
            }
        }
    }

    @FunctionalInterface
    interface CmEventConsumer {
        void accept(RdmaCmId id, RdmaCmId listenId, CmEvent event) throws IOException;
    }

    static byte[] privateData(RdmaConnParam param) {
        if (param == null) {
            return new byte[0];
        }
        long address = param.getPrivate_data();
        int length = param.getPrivate_data_len() & 0xFF;
        if (address == 0 || length == 0) {
            return new byte[0];
        }
        byte[] bytes = new byte[length];
        new UnsafeBuffer(address, length).getBytes(0, bytes);
        return bytes;
    }

    private void onActiveEvent(RdmaCmId id, RdmaCmId listenId, CmEvent event) {
        BlockingQueue<CmEvent> waiter = connecting.get(id);
        if (waiter != null) {
            waiter.add(event);
            return;
        }
        connectionLost(id, event);
    }

    /** DISCONNECTED, DEVICE_REMOVAL and the like on an established connection. */
    void connectionLost(RdmaCmId id, CmEvent event) {
        DisniConnection c = established.remove(id);
        if (c != null) {
            c.fail(WcStatus.TRANSPORT_ERROR, "RDMA CM event " + event.type());
        }
    }

    void established(RdmaCmId id, DisniConnection c) {
        established.put(id, c);
        c.onDestroy(() -> established.remove(id, c));
    }

    static IbvQPInitAttr queuePairAttributes(IbvCQ cq, ConnectionOptions options) {
        IbvQPInitAttr attr = new IbvQPInitAttr();
        attr.cap().setMax_send_wr(options.sendQueueDepth());
        attr.cap().setMax_recv_wr(options.recvQueueDepth());
        attr.cap().setMax_send_sge(1);
        attr.cap().setMax_recv_sge(1);
        attr.setQp_type(IbvQP.IBV_QPT_RC);
        attr.setSend_cq(cq);
        attr.setRecv_cq(cq);
        return attr;
    }

    /** Private data must stay in native memory until connect/accept returned; the caller keeps the buffer. */
    static RdmaConnParam connectionParameters(ByteBuffer nativePrivateData) throws IOException {
        RdmaConnParam param = new RdmaConnParam();
        param.setRetry_count((byte) 7);
        param.setRnr_retry_count((byte) 7);
        if (nativePrivateData.capacity() > 0) {
            param.setPrivate_data(BufferUtil.address(nativePrivateData));
            param.setPrivate_data_len((byte) nativePrivateData.capacity());
        }
        return param;
    }

    static ByteBuffer nativeCopy(byte[] data) {
        ByteBuffer b = ByteBuffer.allocateDirect(Math.max(1, data.length));
        b.put(data).clear();
        return data.length == 0 ? ByteBuffer.allocateDirect(0) : b;
    }

    /** Creates the queue pair for {@code id} on its device and runs the caller's setup. */
    static DisniConnection createConnection(RdmaCmId id, ProtectionDomain pd, CompletionQueue cq,
                                            ConnectionOptions options, ConnectionSetup setup) throws IOException {
        DisniProtectionDomain dpd = (DisniProtectionDomain) pd;
        DisniCompletionQueue dcq = (DisniCompletionQueue) cq;
        IbvContext context = id.getVerbs();
        IbvPd ibvPd = dpd.bind(context);
        IbvCQ ibvCq = dcq.bind(context);
        IbvQP qp = id.createQP(ibvPd, queuePairAttributes(ibvCq, options));
        DisniConnection c = new DisniConnection(id, qp, dpd, dcq, options.sendQueueDepth());
        setup.prepare(c);
        return c;
    }

    @Override
    public VerbsConnection connect(InetSocketAddress remote, InetSocketAddress local, ProtectionDomain pd,
                                   CompletionQueue cq, ConnectionOptions options, byte[] privateData,
                                   Duration timeout, ConnectionSetup setup) throws IOException {
        if (privateData.length > MAX_PRIVATE_DATA) {
            throw new IllegalArgumentException("private data longer than " + MAX_PRIVATE_DATA + " bytes");
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        int timeoutMs = (int) Math.max(1, timeout.toMillis());
        RdmaCmId id = activeChannel.createId(RdmaCm.RDMA_PS_TCP);
        BlockingQueue<CmEvent> events = new LinkedBlockingQueue<>();
        connecting.put(id, events);
        DisniConnection connection = null;
        try {
            id.resolveAddr(local, remote, timeoutMs);
            expect(events, RdmaCmEvent.EventType.RDMA_CM_EVENT_ADDR_RESOLVED, deadline, remote);
            id.resolveRoute(timeoutMs);
            expect(events, RdmaCmEvent.EventType.RDMA_CM_EVENT_ROUTE_RESOLVED, deadline, remote);
            connection = createConnection(id, pd, cq, options, setup);
            ByteBuffer data = nativeCopy(privateData);
            id.connect(connectionParameters(data));
            CmEvent done = expect(events, RdmaCmEvent.EventType.RDMA_CM_EVENT_ESTABLISHED, deadline, remote);
            connection.peerPrivateData(done.privateData());
            established(id, connection);
            ((DisniCompletionQueue) cq).attach(connection);
            return connection;
        } catch (IOException | RuntimeException e) {
            if (connection != null) {
                connection.fail(WcStatus.TRANSPORT_ERROR, "connect failed");
                connection.destroy();
            } else {
                try {
                    id.destroyId();
                } catch (IOException ignored) {
                    // Nothing more to release.
                }
            }
            throw e;
        } finally {
            connecting.remove(id);
        }
    }

    private static CmEvent expect(BlockingQueue<CmEvent> events, RdmaCmEvent.EventType wanted, long deadline,
                                  InetSocketAddress remote) throws IOException {
        try {
            CmEvent e = events.poll(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            if (e == null) {
                throw new IOException("RDMA connect to " + remote + " timed out waiting for " + wanted);
            }
            if (e.type() != wanted) {
                throw new IOException("RDMA connect to " + remote + " failed: " + e.type() + " (status "
                        + e.status() + ")");
            }
            return e;
        } catch (InterruptedException ie) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while connecting to " + remote);
        }
    }

    boolean running() {
        return running;
    }

    @Override
    public void close() {
        running = false;
        synchronized (this) {
            for (DisniListener l : listeners) {
                l.close();
            }
            listeners.clear();
        }
        try {
            cmThread.join(1000);
            activeChannel.destroyEventChannel();
        } catch (IOException | InterruptedException e) {
            // Shutting down: the kernel releases the channel with the process.
        }
    }
}
