package io.weft.actors.transport;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The transports enabled on a node ({@code weft.transport.enabled}), by name. */
public final class Transports {
    private final Map<String, Transport> byName = new LinkedHashMap<>();

    public Transports(List<Transport> transports) {
        for (Transport t : transports) {
            byName.put(t.name(), t);
        }
    }

    /** Builds the built-in transports named in config; unknown names fail start-up with the list of known ones. */
    public static Transports of(List<String> names) {
        List<Transport> list = new java.util.ArrayList<>();
        for (String name : names) {
            switch (name) {
                case InProcessTransport.NAME: list.add(new InProcessTransport()); break;
                case ControlOnlyTransport.NAME: list.add(new ControlOnlyTransport()); break;
                default:
                    throw new IllegalArgumentException("unknown transport '" + name + "' in weft.transport.enabled;"
                            + " known here: " + InProcessTransport.NAME + ", " + ControlOnlyTransport.NAME
                            + " (cxl and rdma plug in when their modules land)");
            }
        }
        return new Transports(list);
    }

    /** @return the transport, or null when it is not enabled on this node */
    public Transport get(String name) {
        return byName.get(name);
    }

    public List<String> names() {
        return List.copyOf(byName.keySet());
    }
}
