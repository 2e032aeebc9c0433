package io.weft.bench.jmh;

import io.weft.core.io.IoOp;
import io.weft.rdma.protocol.ControlMessage;
import io.weft.rdma.protocol.Immediate;
import io.weft.rdma.protocol.RequestHeader;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import org.agrona.concurrent.UnsafeBuffer;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.infra.Blackhole;

/**
 * The RDMA session protocol's per-IO codecs: the 64-byte {@link RequestHeader} the client writes into its chunk, the
 * 32-bit {@link Immediate} that announces a request or carries a status, and the {@link ControlMessage} heartbeat
 * (the only control message sent periodically). Buffers are direct and allocated once, as on the data path.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class RdmaCodecBench {
    private final RequestHeader header = new RequestHeader();
    private final ControlMessage control = new ControlMessage();
    private UnsafeBuffer chunk;
    private UnsafeBuffer controlBuffer;
    private long sequence;

    @Setup
    public void setUp() {
        chunk = new UnsafeBuffer(ByteBuffer.allocateDirect(RequestHeader.LENGTH + 4096));
        controlBuffer = new UnsafeBuffer(ByteBuffer.allocateDirect(ControlMessage.MAX_LENGTH));
        header.wrap(chunk, 0).encode(IoOp.READ.ordinal(), 0, 4096L * 77, 4096, 0x7f00_0000_1000L, 42, 4096, 1);
        control.wrap(controlBuffer, 0).encodeHeartbeat(ControlMessage.HEARTBEAT, 1, System.nanoTime());
    }

    /** Client side: wrap the chunk and write a whole READ request header. */
    @Benchmark
    public void requestHeaderEncode() {
        long s = ++sequence;
        header.wrap(chunk, 0).encode(IoOp.READ.ordinal(), 0, (s & 0xFFFF) << 12, 4096, 0x7f00_0000_1000L, 42, 4096,
                s);
    }

    /** Storage side: wrap the received chunk and read every field the handler uses. */
    @Benchmark
    public void requestHeaderDecode(Blackhole bh) {
        RequestHeader h = header.wrap(chunk, 0);
        bh.consume(h.op());
        bh.consume(h.flags());
        bh.consume(h.offset());
        bh.consume(h.length());
        bh.consume(h.readAddress());
        bh.consume(h.readRkey());
        bh.consume(h.readLength());
    }

    /** Both immediates of one IO: the request announcement and the status reply, each encoded and decoded. */
    @Benchmark
    public int immediateRoundTrip() {
        int chunkIndex = (int) (++sequence & 0x3FF);
        int request = Immediate.request(chunkIndex);
        int response = Immediate.response(Immediate.chunk(request), 0);
        return Immediate.type(request) + Immediate.type(response) + Immediate.status(response)
                + Immediate.chunk(response);
    }

    @Benchmark
    public void heartbeatEncodeDecode(Blackhole bh) {
        ControlMessage m = control.wrap(controlBuffer, 0);
        m.encodeHeartbeat(ControlMessage.HEARTBEAT, ++sequence, sequence);
        bh.consume(m.type());
        bh.consume(m.heartbeatSequence());
        bh.consume(m.heartbeatClock());
    }
}
