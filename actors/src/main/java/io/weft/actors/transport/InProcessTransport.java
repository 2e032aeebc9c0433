package io.weft.actors.transport;

import io.weft.core.io.BlockDevice;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Storage and client in the same JVM share the served BlockDevice object itself: no copy, no hop, no thread. The
 * endpoint carries a token and this JVM's identity, so a client in another JVM gets a clear error instead of a hang.
 * When the storage side stops serving, the connected client channel is told at once (the in-process equivalent of a
 * connection reset).
 */
public final class InProcessTransport implements Transport {
    public static final String NAME = "inprocess";
    /** Distinguishes JVMs: pid plus start time, so a restarted process with a recycled pid differs too. */
    static final String JVM_ID =
            ProcessHandle.current().pid() + "-" + ManagementFactory.getRuntimeMXBean().getStartTime();

    private static final Map<String, Served> SERVED = new ConcurrentHashMap<>();

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public TransportAcceptor acceptor() {
        // Same JVM: the token is a JVM-local random name, unreachable from outside; the grant adds nothing here.
        return (mappingId, device, grant, onFailure) -> {
            String token = mappingId + "/" + UUID.randomUUID();
            Served served = new Served(token, device);
            SERVED.put(token, served);
            return served;
        };
    }

    @Override
    public TransportConnector connector() {
        return (endpoint, onFailure) -> {
            if (!NAME.equals(endpoint.transport())) {
                throw new IOException("not an inprocess endpoint: " + endpoint.transport());
            }
            if (!JVM_ID.equals(endpoint.require("jvm"))) {
                throw new UnreachableEndpointException("the inprocess transport only works when client and storage"
                        + " share a JVM; map with a transport that crosses processes (cxl or rdma)");
            }
            Served served = SERVED.get(endpoint.require("token"));
            if (served == null) {
                throw new IOException("inprocess endpoint is no longer served: " + endpoint.require("token"));
            }
            return served.attach(onFailure);
        };
    }

    /** Number of served endpoints in this JVM (tests check that nothing leaks). */
    public static int servedCount() {
        return SERVED.size();
    }

    private static final class Served implements ServedChannel {
        private final String token;
        private final BlockDevice device;
        private final Map<Attached, Boolean> clients = new ConcurrentHashMap<>();
        private volatile boolean closed;

        Served(String token, BlockDevice device) {
            this.token = token;
            this.device = device;
        }

        @Override
        public TransportEndpoint endpoint() {
            return new TransportEndpoint(NAME, Map.of("token", token, "jvm", JVM_ID));
        }

        Attached attach(ChannelFailureListener onFailure) throws IOException {
            Attached attached = new Attached(this, onFailure);
            clients.put(attached, Boolean.TRUE);
            if (closed) {
                clients.remove(attached);
                throw new IOException("inprocess endpoint closed while connecting");
            }
            return attached;
        }

        @Override
        public void close() {
            closed = true;
            SERVED.remove(token);
            for (Attached client : clients.keySet()) {
                client.onFailure.channelFailed(new IOException("storage stopped serving " + token));
            }
            clients.clear();
        }
    }

    private static final class Attached implements MappingChannel {
        private final Served served;
        private final ChannelFailureListener onFailure;

        Attached(Served served, ChannelFailureListener onFailure) {
            this.served = served;
            this.onFailure = onFailure;
        }

        @Override
        public BlockDevice device() {
            return served.device;
        }

        @Override
        public void close() {
            served.clients.remove(this);
        }
    }
}
