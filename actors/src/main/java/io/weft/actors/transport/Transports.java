package io.weft.actors.transport;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The transports enabled on a node ({@code weft.transport.enabled}), by name, and the node-wide resources they share
 * (the RDMA server, the attached CXL regions, the channel watcher thread). {@link #close()} releases those; the
 * runtime calls it when the actor system has terminated.
 */
public final class Transports implements AutoCloseable {
    /** Every built-in transport name. */
    public static final List<String> KNOWN = List.of(AutoTransport.NAME, InProcessTransport.NAME, CxlTransport.NAME,
            RdmaTransport.NAME, ControlOnlyTransport.NAME);

    private final Map<String, Transport> byName = new LinkedHashMap<>();
    private final List<AutoCloseable> resources = new ArrayList<>();

    public Transports(List<Transport> transports) {
        for (Transport t : transports) {
            byName.put(t.name(), t);
        }
    }

    /** Builds the built-in transports named in config, without cxl/rdma resources (in-JVM tests). */
    public static Transports of(List<String> names) {
        for (String name : names) {
            if (!name.equals(InProcessTransport.NAME) && !name.equals(ControlOnlyTransport.NAME)) {
                throw new IllegalArgumentException("transport '" + name + "' needs settings: use of(names, settings)");
            }
        }
        return of(names, null);
    }

    /**
     * Builds the built-in transports named in config; unknown names fail start-up with the list of known ones. CXL
     * regions are attached here (so a missing region fails start-up); the RDMA server starts on first use.
     */
    public static Transports of(List<String> names, TransportSettings settings) {
        for (String name : names) {
            if (!KNOWN.contains(name)) {
                throw new IllegalArgumentException("unknown transport '" + name + "' in weft.transport.enabled;"
                        + " known here: " + String.join(", ", KNOWN));
            }
        }
        List<Transport> list = new ArrayList<>();
        List<AutoCloseable> resources = new ArrayList<>();
        InProcessTransport inProcess = new InProcessTransport();
        ChannelWatcher watcher = null;
        CxlTransport cxl = null;
        RdmaTransport rdma = null;
        boolean needsData = names.contains(AutoTransport.NAME) || names.contains(CxlTransport.NAME)
                || names.contains(RdmaTransport.NAME);
        try {
            if (needsData) {
                watcher = new ChannelWatcher(settings.channelGrace());
                resources.add(watcher);
                cxl = new CxlTransport(settings, watcher);
                resources.add(cxl);
                rdma = new RdmaTransport(settings, watcher);
                resources.add(rdma);
            }
        } catch (RuntimeException e) {
            closeAll(resources);
            throw e;
        }
        for (String name : names) {
            switch (name) {
                case AutoTransport.NAME: list.add(new AutoTransport(inProcess, cxl, rdma)); break;
                case InProcessTransport.NAME: list.add(inProcess); break;
                case CxlTransport.NAME: list.add(cxl); break;
                case RdmaTransport.NAME: list.add(rdma); break;
                default: list.add(new ControlOnlyTransport()); break;
            }
        }
        Transports transports = new Transports(list);
        transports.resources.addAll(resources);
        return transports;
    }

    /** @return the transport, or null when it is not enabled on this node */
    public Transport get(String name) {
        return byName.get(name);
    }

    public List<String> names() {
        return List.copyOf(byName.keySet());
    }

    /** The node's CXL transport (also used by {@code auto}), or null when no data transport is enabled. */
    public CxlTransport cxl() {
        for (AutoCloseable r : resources) {
            if (r instanceof CxlTransport c) {
                return c;
            }
        }
        return null;
    }

    /** The node's RDMA transport (also used by {@code auto}), or null when no data transport is enabled. */
    public RdmaTransport rdma() {
        for (AutoCloseable r : resources) {
            if (r instanceof RdmaTransport t) {
                return t;
            }
        }
        return null;
    }

    /** Stops the RDMA server, detaches CXL regions, stops the watcher. Idempotent. */
    @Override
    public synchronized void close() {
        List<AutoCloseable> copy = new ArrayList<>(resources);
        java.util.Collections.reverse(copy);
        resources.clear();
        closeAll(copy);
    }

    private static void closeAll(List<AutoCloseable> list) {
        for (AutoCloseable r : list) {
            try {
                r.close();
            } catch (Exception e) {
                org.slf4j.LoggerFactory.getLogger(Transports.class).warn("closing {}: {}", r, e.toString());
            }
        }
    }
}
