package io.weft.actors.transport;

import io.weft.core.io.BlockDevice;
import java.io.IOException;
import java.util.HashMap;
import java.util.Map;

/**
 * {@code auto}: the storage side offers every way it can serve a mapping, the client takes the best one it can use.
 *
 * <p>Storage side: the endpoint carries the in-process token (see {@link InProcessTransport}), the CXL regions this
 * node attached with the mapping's backend in each ({@link CxlTransport}, only when {@code weft.cxl.regions} is not
 * empty) and the RDMA addresses ({@link RdmaTransport}). Client side, in order: the same JVM → {@code inprocess}; a
 * region attached here with the same identity (format id from the region header, not the file path) →
 * {@code cxl}; otherwise {@code rdma}. The chosen transport is what the device reports.
 *
 * <p>Each offer is best effort (a full region or a failed RDMA listener leaves that offer out and is logged); the
 * in-process offer always works. The offers the client does not take stay allocated until the mapping is released (an
 * RDMA device name costs nothing until a session opens; a CXL backend holds {@code weft.cxl.channels} segments, served
 * by the node's shared handler agent).
 */
public final class AutoTransport implements Transport {
    public static final String NAME = "auto";
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(AutoTransport.class);

    private final InProcessTransport inProcess;
    private final CxlTransport cxl;
    private final RdmaTransport rdma;

    AutoTransport(InProcessTransport inProcess, CxlTransport cxl, RdmaTransport rdma) {
        this.inProcess = inProcess;
        this.cxl = cxl;
        this.rdma = rdma;
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public TransportAcceptor acceptor() {
        return (mappingId, device, grant, onFailure) -> {
            ServedChannel local = inProcess.acceptor().serve(mappingId, device, grant, onFailure);
            CxlTransport.Served shared = null;
            try {
                Map<String, String> props = new HashMap<>(local.endpoint().properties());
                // Each offer is best effort: a full region or an RDMA listen failure must not stop the others.
                try {
                    shared = cxl.serveBackends(mappingId, device, grant);
                } catch (IOException | RuntimeException e) {
                    LOG.warn("auto: mapping {} not offered over cxl: {}", mappingId, e.getMessage());
                }
                if (shared != null) {
                    props.putAll(shared.properties());
                    shared.watch(onFailure);
                }
                try {
                    props.putAll(rdma.serveProperties(mappingId, device, grant));
                } catch (IOException | RuntimeException e) {
                    LOG.warn("auto: mapping {} not offered over rdma: {}", mappingId, e.getMessage());
                }
                TransportEndpoint endpoint = new TransportEndpoint(NAME, props);
                CxlTransport.Served backends = shared;
                return new ServedChannel() {
                    @Override
                    public TransportEndpoint endpoint() {
                        return endpoint;
                    }

                    /** A client attached over cxl or rdma is heard there; one attached in-process is not. */
                    @Override
                    public boolean carriesClientLiveness() {
                        return true;
                    }

                    @Override
                    public long clientLastHeardNanos() {
                        long overRdma = rdma.deviceClientLastHeardNanos(mappingId);
                        long overCxl = backends == null ? NEVER_HEARD : backends.clientLastHeardNanos();
                        if (overRdma == NEVER_HEARD) {
                            return overCxl;
                        }
                        return overCxl == NEVER_HEARD || overRdma - overCxl > 0 ? overRdma : overCxl;
                    }

                    @Override
                    public void close() {
                        local.close();
                        if (backends != null) {
                            backends.close();
                        }
                        rdma.unserve(mappingId);
                    }
                };
            } catch (RuntimeException e) {
                local.close();
                if (shared != null) {
                    shared.close();
                }
                throw e;
            }
        };
    }

    @Override
    public TransportConnector connector() {
        return this::connect;
    }

    private MappingChannel connect(TransportEndpoint endpoint, ChannelFailureListener onFailure) throws IOException {
        if (InProcessTransport.JVM_ID.equals(endpoint.properties().get("jvm"))) {
            MappingChannel channel = inProcess.connector().connect(
                    new TransportEndpoint(InProcessTransport.NAME, endpoint.properties()), onFailure);
            return new MappingChannel() {
                @Override
                public BlockDevice device() {
                    return channel.device();
                }

                @Override
                public String transportName() {
                    return InProcessTransport.NAME;
                }

                @Override
                public void close() {
                    channel.close();
                }
            };
        }
        if (cxl.sharedRegion(endpoint) != null) {
            return cxl.connect(endpoint, onFailure);
        }
        if (rdma.canReach(endpoint)) {
            return rdma.connect(endpoint, onFailure);
        }
        throw new UnreachableEndpointException("auto: the storage node offers no transport this node can use"
                + " (offered: " + endpoint.properties().keySet() + ")");
    }
}
