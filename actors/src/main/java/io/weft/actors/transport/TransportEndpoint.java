package io.weft.actors.transport;

import java.util.Map;

/**
 * Where a client reaches one served mapping, as carried in the open reply. The properties are transport specific
 * (CXL: region path and channel ids; RDMA: address and chunk descriptors; inprocess: a JVM-local token).
 *
 * @param transport  the transport's name ({@link Transport#name()})
 * @param properties transport-specific, string-valued so the reply stays plain JSON
 */
public record TransportEndpoint(String transport, Map<String, String> properties) {
    public TransportEndpoint {
        properties = Map.copyOf(properties);
    }

    /** Properties whose values are secrets (grant capabilities): never printed. */
    private static boolean secret(String key) {
        return key.endsWith("capability");
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("TransportEndpoint[transport=").append(transport).append(", properties={");
        String sep = "";
        for (Map.Entry<String, String> e : new java.util.TreeMap<>(properties).entrySet()) {
            b.append(sep).append(e.getKey()).append('=').append(secret(e.getKey()) ? "<redacted>" : e.getValue());
            sep = ", ";
        }
        return b.append("}]").toString();
    }

    public String require(String key) throws java.io.IOException {
        String value = properties.get(key);
        if (value == null) {
            throw new java.io.IOException(transport + " endpoint lacks '" + key + "'");
        }
        return value;
    }
}
