package io.weft.rdma.verbs.disni;

import com.ibm.disni.verbs.RdmaCm;
import com.ibm.disni.verbs.RdmaCmId;
import com.ibm.disni.verbs.RdmaEventChannel;
import io.weft.rdma.verbs.CompletionQueue;
import io.weft.rdma.verbs.ConnectionOptions;
import io.weft.rdma.verbs.ConnectionRequest;
import io.weft.rdma.verbs.ConnectionRequestHandler;
import io.weft.rdma.verbs.ConnectionSetup;
import io.weft.rdma.verbs.ProtectionDomain;
import io.weft.rdma.verbs.VerbsConnection;
import io.weft.rdma.verbs.VerbsListener;
import io.weft.rdma.verbs.VerbsProvider;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A listening RDMA CM id with its own event channel and thread: connect requests go to the handler; disconnects of
 * accepted connections fail them. DiSNI 2.0 does not expose rdma_reject, so a refused request is destroyed, which
 * the peer sees as a rejected or failed connect.
 */
final class DisniListener implements VerbsListener {
    private static final Logger LOG = LoggerFactory.getLogger(DisniListener.class);

    private final DisniProvider provider;
    private final ConnectionRequestHandler handler;
    private final RdmaEventChannel channel;
    private final RdmaCmId listenId;
    private final InetSocketAddress address;
    private final Thread thread;
    private volatile boolean closed;

    DisniListener(DisniProvider provider, InetSocketAddress bind, ConnectionRequestHandler handler)
            throws IOException {
        this.provider = provider;
        this.handler = handler;
        this.channel = RdmaEventChannel.createEventChannel();
        this.listenId = channel.createId(RdmaCm.RDMA_PS_TCP);
        listenId.bindAddr(bind);
        listenId.listen(128);
        java.net.SocketAddress bound = listenId.getSource();
        this.address = bound instanceof InetSocketAddress ? (InetSocketAddress) bound : bind;
        this.thread = new Thread(() -> provider.cmLoop(channel, this::onEvent), "weft-rdma-disni-listen-"
                + address.getPort());
        thread.setDaemon(true);
        thread.start();
    }

    private void onEvent(RdmaCmId id, RdmaCmId listen, DisniProvider.CmEvent event) {
        if (closed) {
            return;
        }
        switch (event.type()) {
            case RDMA_CM_EVENT_CONNECT_REQUEST: {
                Request request = new Request(id, event.privateData());
                try {
                    handler.onConnectRequest(request);
                } catch (RuntimeException e) {
                    LOG.warn("connect request handler failed", e);
                }
                if (!request.decided) {
                    request.reject(-1);
                }
                break;
            }
            case RDMA_CM_EVENT_ESTABLISHED:
                break;
            default:
                provider.connectionLost(id, event);
        }
    }

    @Override
    public InetSocketAddress localAddress() {
        return address;
    }

    @Override
    public void close() {
        closed = true;
        try {
            listenId.destroyId();
            thread.join(1000);
            channel.destroyEventChannel();
        } catch (IOException | InterruptedException e) {
            // Best effort at shutdown.
        }
    }

    private final class Request implements ConnectionRequest {
        private final RdmaCmId id;
        private final byte[] privateData;
        private boolean decided;

        Request(RdmaCmId id, byte[] privateData) {
            this.id = id;
            this.privateData = privateData;
        }

        @Override
        public ByteBuffer privateData() {
            return ByteBuffer.wrap(privateData).asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
        }

        @Override
        public InetSocketAddress remoteAddress() {
            try {
                java.net.SocketAddress a = id.getDestination();
                return a instanceof InetSocketAddress ? (InetSocketAddress) a : null;
            } catch (IOException e) {
                return null;
            }
        }

        @Override
        public InetSocketAddress localAddress() {
            return address;
        }

        @Override
        public VerbsConnection accept(ProtectionDomain pd, CompletionQueue cq, ConnectionOptions options,
                                      byte[] replyPrivateData, ConnectionSetup setup) throws IOException {
            if (replyPrivateData.length > VerbsProvider.MAX_PRIVATE_DATA) {
                throw new IllegalArgumentException("reply private data too long");
            }
            decided = true;
            DisniConnection c = DisniProvider.createConnection(id, pd, cq, options, setup);
            c.peerPrivateData(privateData);
            ByteBuffer data = DisniProvider.nativeCopy(replyPrivateData);
            id.accept(DisniProvider.connectionParameters(data));
            provider.established(id, c);
            ((DisniCompletionQueue) cq).attach(c);
            return c;
        }

        @Override
        public void reject(int reason) {
            if (decided) {
                return;
            }
            decided = true;
            try {
                id.destroyId();
            } catch (IOException e) {
                // The request is gone either way.
            }
        }
    }
}
