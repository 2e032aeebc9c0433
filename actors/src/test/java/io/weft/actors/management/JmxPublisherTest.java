package io.weft.actors.management;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.weft.actors.NodeState;
import java.lang.management.ManagementFactory;
import java.lang.reflect.Proxy;
import java.time.Duration;
import java.util.List;
import java.util.stream.Collectors;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import org.junit.jupiter.api.Test;

/** The MBeans follow the node's backends and devices as they come and go, with no timer running meanwhile. */
class JmxPublisherTest {
    private static final Duration WAIT = Duration.ofSeconds(10);
    private static final String NODE = "jmx-publisher-test";

    /** Only what JmxPublisher reads to register beans; any other call is a test bug. */
    private static NodeOperations node(NodeState state) {
        return (NodeOperations) Proxy.newProxyInstance(NodeOperations.class.getClassLoader(),
                new Class<?>[] {NodeOperations.class}, (proxy, method, args) -> {
                    switch (method.getName()) {
                        case "nodeName": return NODE;
                        case "state": return state;
                        default: throw new UnsupportedOperationException(method.getName());
                    }
                });
    }

    private static List<Thread.State> publisherThreadStates() {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().equals("weft-jmx-" + NODE))
                .map(Thread::getState).collect(Collectors.toList());
    }

    @Test
    void beansFollowTheBackendsAndNoTimerRunsWhileNothingChanges() throws Exception {
        MBeanServer mbs = ManagementFactory.getPlatformMBeanServer();
        NodeState state = new NodeState();
        ObjectName backend = new ObjectName("io.weft:type=Backend,node=\"" + NODE + "\",path=\"b.img\"");
        try (JmxPublisher publisher = JmxPublisher.start(node(state))) {
            NodeState.BackendEntry entry = new NodeState.BackendEntry("b.img", 1 << 20);
            state.putBackend(entry);
            await("backend MBean registered", WAIT, () -> mbs.isRegistered(backend));
            state.removeBackend("b.img", entry);
            await("backend MBean unregistered", WAIT, () -> !mbs.isRegistered(backend));
            // Idle: the publisher's thread, if it has one, waits for the next change, not for a clock.
            await("no timer in the JMX publisher: " + publisherThreadStates(), WAIT,
                    () -> publisherThreadStates().stream().allMatch(s -> s == Thread.State.WAITING));
        }
        assertEquals(false, mbs.isRegistered(backend));
    }
}
