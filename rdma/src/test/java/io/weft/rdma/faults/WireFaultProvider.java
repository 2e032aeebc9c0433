package io.weft.rdma.faults;

import io.weft.rdma.verbs.CompletionHandler;
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
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.BooleanSupplier;

/**
 * Fault injection on the RDMA wire (test code): a {@link VerbsProvider} decorator, normally over the software
 * provider, whose connections ({@link WireFaultConnection}) hold, release, drop, duplicate and reorder the frames a
 * connection posts and the completions it delivers, on command from the test thread. A held frame carries its
 * payload as it was when posted (as a frame on the wire does), and a close requested while frames are held goes out
 * after them (a closing connection still delivers what is already on the wire).
 *
 * <p>Commands may be given from any thread; they are executed by the thread that polls the connection's completion
 * queue, so the provider's threading rule (only the owner posts) still holds. {@link #partition} cuts a route: every
 * open connection to that address holds its outbound frames, and new connects to it fail.
 *
 * <p>Package {@code io.weft.rdma.faults}: meant to move to the shared {@code test-kit} module later.
 */
public final class WireFaultProvider implements VerbsProvider {
    private final VerbsProvider delegate;
    private final Set<InetSocketAddress> partitioned = ConcurrentHashMap.newKeySet();
    private final List<WireFaultConnection> connections = new CopyOnWriteArrayList<>();

    public WireFaultProvider(VerbsProvider delegate) {
        this.delegate = delegate;
    }

    /**
     * Cuts the route to {@code remote}: every connection opened to it holds what it sends (its close waits behind the
     * held frames) and new connects to it fail until {@link #heal}.
     */
    public void partition(InetSocketAddress remote) {
        partitioned.add(remote);
        for (WireFaultConnection c : connectionsTo(remote)) {
            c.holdOutbound();
        }
    }

    /** New connects to {@code remote} succeed again; held frames stay held until released or dropped. */
    public void heal(InetSocketAddress remote) {
        partitioned.remove(remote);
    }

    /** Connections this provider opened to {@code remote} (client side), oldest first, closed ones included. */
    public List<WireFaultConnection> connectionsTo(InetSocketAddress remote) {
        List<WireFaultConnection> out = new ArrayList<>();
        for (WireFaultConnection c : connections) {
            if (remote.equals(c.connectedTo)) {
                out.add(c);
            }
        }
        return out;
    }

    /** Every connection of this provider (opened or accepted), oldest first. */
    public List<WireFaultConnection> connections() {
        return List.copyOf(connections);
    }

    @Override
    public String name() {
        return delegate.name();
    }

    @Override
    public ProtectionDomain createProtectionDomain() {
        return delegate.createProtectionDomain();
    }

    @Override
    public CompletionQueue createCompletionQueue(String name) {
        return new FaultQueue(delegate.createCompletionQueue(name));
    }

    @Override
    public VerbsListener listen(InetSocketAddress address, ConnectionRequestHandler handler) throws IOException {
        return delegate.listen(address, request -> handler.onConnectRequest(new ConnectionRequest() {
            @Override
            public ByteBuffer privateData() {
                return request.privateData();
            }

            @Override
            public InetSocketAddress remoteAddress() {
                return request.remoteAddress();
            }

            @Override
            public InetSocketAddress localAddress() {
                return request.localAddress();
            }

            @Override
            public VerbsConnection accept(ProtectionDomain pd, CompletionQueue cq, ConnectionOptions options,
                                          byte[] reply, ConnectionSetup setup) throws IOException {
                FaultQueue queue = (FaultQueue) cq;
                WireFaultConnection[] made = new WireFaultConnection[1];
                request.accept(pd, queue.delegate, options, reply, d -> {
                    made[0] = wrap(d, pd, queue, options, null, copy(request.privateData()));
                    setup.prepare(made[0]);
                });
                return made[0];
            }

            @Override
            public void reject(int reason) {
                request.reject(reason);
            }
        }));
    }

    @Override
    public VerbsConnection connect(InetSocketAddress remote, InetSocketAddress local, ProtectionDomain pd,
                                   CompletionQueue cq, ConnectionOptions options, byte[] privateData,
                                   Duration timeout, ConnectionSetup setup) throws IOException {
        if (partitioned.contains(remote)) {
            throw new IOException("route to " + remote + " is partitioned (fault injection)");
        }
        FaultQueue queue = (FaultQueue) cq;
        WireFaultConnection[] made = new WireFaultConnection[1];
        delegate.connect(remote, local, pd, queue.delegate, options, privateData, timeout, d -> {
            made[0] = wrap(d, pd, queue, options, remote, privateData.clone());
            setup.prepare(made[0]);
        });
        return made[0];
    }

    private WireFaultConnection wrap(VerbsConnection d, ProtectionDomain pd, FaultQueue queue,
                                     ConnectionOptions options, InetSocketAddress connectedTo, byte[] privateData)
            throws IOException {
        WireFaultConnection c = new WireFaultConnection(d, pd, queue, options, connectedTo, privateData);
        d.attach(c);
        connections.add(c);
        queue.connections.add(c);
        if (connectedTo != null && partitioned.contains(connectedTo)) {
            c.holdOutbound();
        }
        return c;
    }

    private static byte[] copy(ByteBuffer b) {
        ByteBuffer d = b.duplicate();
        byte[] out = new byte[d.remaining()];
        d.get(out);
        return out;
    }

    @Override
    public void close() {
        delegate.close();
    }

    /** A completion queue whose owner also runs the fault commands of its connections. */
    static final class FaultQueue implements CompletionQueue {
        final CompletionQueue delegate;
        final List<WireFaultConnection> connections = new CopyOnWriteArrayList<>();
        private final Handler handler = new Handler();

        FaultQueue(CompletionQueue delegate) {
            this.delegate = delegate;
        }

        @Override
        public int poll(CompletionHandler target, int maxCompletions) {
            int work = 0;
            for (WireFaultConnection c : connections) {
                work += c.runCommands(target);
            }
            handler.target = target;
            work += delegate.poll(handler, maxCompletions);
            for (WireFaultConnection c : connections) {
                work += c.afterPoll();
            }
            return work;
        }

        boolean hasCommands() {
            for (WireFaultConnection c : connections) {
                if (c.hasCommands()) {
                    return true;
                }
            }
            return false;
        }

        @Override
        public void await(long timeoutNanos, BooleanSupplier pendingWork) {
            delegate.await(timeoutNanos, () -> hasCommands() || pendingWork.getAsBoolean());
        }

        @Override
        public boolean flush() {
            return delegate.flush();
        }

        @Override
        public void wakeup() {
            delegate.wakeup();
        }

        @Override
        public String name() {
            return delegate.name();
        }

        @Override
        public void close() {
            delegate.close();
        }
    }

    /** Hands the delegate's completions to the faulty connection they belong to. */
    private static final class Handler implements CompletionHandler {
        CompletionHandler target;

        @Override
        public void onReceive(VerbsConnection connection, long wrId, int byteLength) {
            WireFaultConnection c = (WireFaultConnection) connection.attachment();
            c.inbound(target, WireFaultConnection.RECEIVE, wrId, 0, byteLength);
        }

        @Override
        public void onWriteWithImmediate(VerbsConnection connection, long wrId, int immediate, int byteLength) {
            WireFaultConnection c = (WireFaultConnection) connection.attachment();
            c.inbound(target, WireFaultConnection.WRITE_IMM, wrId, immediate, byteLength);
        }

        @Override
        public void onError(VerbsConnection connection, int status, String reason) {
            WireFaultConnection c = (WireFaultConnection) connection.attachment();
            c.error(target, status, reason);
        }
    }
}
