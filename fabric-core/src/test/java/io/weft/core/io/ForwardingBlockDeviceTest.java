package io.weft.core.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ForwardingBlockDeviceTest {
    /** Records each call it receives. */
    private static final class CallLog implements BlockDevice {
        final List<String> calls = new ArrayList<>();

        @Override
        public DeviceInfo info() {
            calls.add("info");
            return null;
        }

        @Override
        public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                           IoCompletion completion) {
            calls.add("submit " + op + " " + offset + " " + length + " " + flags + " " + tag);
        }

        @Override
        public long describeExtents(long offset, long length, ExtentConsumer consumer) {
            calls.add("describeExtents " + offset + " " + length);
            return 7;
        }

        @Override
        public void awaitCompletions(long maxWaitNanos) {
            calls.add("awaitCompletions " + maxWaitNanos);
        }

        @Override
        public void cancel(long tag, IoCompletion completion) {
            calls.add("cancel " + tag);
        }

        @Override
        public void close() {
            calls.add("close");
        }
    }

    private static final class PassThrough extends ForwardingBlockDevice {
        PassThrough(BlockDevice delegate) {
            super(delegate);
        }
    }

    @Test
    void everyCallReachesTheDelegate() {
        CallLog log = new CallLog();
        BlockDevice device = new PassThrough(log);
        IoCompletion completion = (tag, status) -> { };

        device.info();
        device.submit(IoOp.WRITE, 4096, 512, 1, ByteBuffer.allocate(512), 9, completion);
        assertEquals(7, device.describeExtents(0, 8192, (length, flags) -> true));
        device.awaitCompletions(1000);
        device.cancel(9, completion);
        device.close();

        assertEquals(List.of("info", "submit WRITE 4096 512 1 9", "describeExtents 0 8192", "awaitCompletions 1000",
                "cancel 9", "close"), log.calls);
    }

    /** A method added to BlockDevice later must be forwarded too, not fall back to its default. */
    @Test
    void forwardsEveryInstanceMethodOfBlockDevice() throws Exception {
        for (Method m : BlockDevice.class.getMethods()) {
            if (Modifier.isStatic(m.getModifiers()) || m.getDeclaringClass() == Object.class) {
                continue;
            }
            Method own = ForwardingBlockDevice.class.getMethod(m.getName(), m.getParameterTypes());
            assertTrue(own.getDeclaringClass() == ForwardingBlockDevice.class,
                    "ForwardingBlockDevice does not forward " + m);
        }
    }
}
