package io.weft.actors.transport;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.util.Map;

/**
 * Maps without a data path: the control plane (open, access modes, heartbeats, remap) runs for real, and every IO
 * completes with {@link IoStatus#ENOTSUP}. Used by the multi-JVM control-plane tests until a transport that crosses
 * processes (CXL, RDMA) lands; never a default.
 */
public final class ControlOnlyTransport implements Transport {
    public static final String NAME = "control-only";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public TransportAcceptor acceptor() {
        return (mappingId, device, grant, onFailure) -> new ServedChannel() {
            @Override
            public TransportEndpoint endpoint() {
                return new TransportEndpoint(NAME, Map.of("mapping", mappingId));
            }

            @Override
            public void close() {
            }
        };
    }

    @Override
    public TransportConnector connector() {
        return (endpoint, onFailure) -> new MappingChannel() {
            @Override
            public BlockDevice device() {
                return NoDataPath.INSTANCE;
            }

            @Override
            public void close() {
            }
        };
    }

    private static final class NoDataPath implements BlockDevice {
        static final NoDataPath INSTANCE = new NoDataPath();
        private static final DeviceInfo INFO = new DeviceInfo(0, 512, 4096, 4096, true, false, false, false, false,
                false, false, false);

        @Override
        public DeviceInfo info() {
            return INFO;
        }

        @Override
        public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                           IoCompletion completion) {
            completion.onComplete(tag, IoStatus.ENOTSUP);
        }

        @Override
        public void close() {
        }
    }
}
