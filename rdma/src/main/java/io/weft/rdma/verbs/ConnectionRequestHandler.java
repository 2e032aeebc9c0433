package io.weft.rdma.verbs;

/** Decides on incoming connections; runs on the provider's connection-manager thread (control path). */
@FunctionalInterface
public interface ConnectionRequestHandler {
    /** Must call {@link ConnectionRequest#accept} or {@link ConnectionRequest#reject}; doing neither rejects. */
    void onConnectRequest(ConnectionRequest request);
}
