package io.weft.rdma.verbs;

/**
 * Runs once a connection's queue pair exists and before the peer can send to it: post the first receives and attach
 * the caller's context here. The calling thread may post on the connection only inside this method.
 */
@FunctionalInterface
public interface ConnectionSetup {
    void prepare(VerbsConnection connection) throws java.io.IOException;

    ConnectionSetup NONE = connection -> { };
}
