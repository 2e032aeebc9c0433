package io.weft.rdma;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SocketChannel;
import java.time.Duration;

/**
 * A hand-rolled peer speaking the software provider's frames (as documented in docs/rdma.md), for feeding the
 * storage side malformed and hostile traffic.
 */
final class RawPeer implements AutoCloseable {
    static final int HELLO = 1;
    static final int ACCEPT = 2;
    static final int REJECT = 3;
    static final int WRITE = 4;
    static final int WRITE_IMM = 5;
    static final int SEND = 6;
    static final int ERROR = 7;
    static final int HEADER = 24;

    record Frame(int type, int length, long address, int rkey, int imm, byte[] payload) {
    }

    private final SocketChannel channel;
    private final InputStream in;

    private RawPeer(SocketChannel channel) throws IOException {
        this.channel = channel;
        this.in = channel.socket().getInputStream();
    }

    static RawPeer connect(InetSocketAddress address) throws IOException {
        SocketChannel ch = SocketChannel.open(address);
        return new RawPeer(ch);
    }

    /** Connects and completes the handshake; returns the ACCEPT frame (or REJECT). */
    static Frame handshake(RawPeer peer, byte[] privateData) throws IOException {
        ByteBuffer hello = ByteBuffer.allocate(8 + privateData.length).order(ByteOrder.LITTLE_ENDIAN);
        hello.putInt(0x42565357).putShort((short) 1).putShort((short) privateData.length).put(privateData);
        peer.send(HELLO, 0, 0, 0, hello.array());
        return peer.read(Duration.ofSeconds(10));
    }

    void raw(byte[] bytes) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(bytes);
        while (b.hasRemaining()) {
            channel.write(b);
        }
    }

    void send(int type, long address, int rkey, int imm, byte[] payload) throws IOException {
        raw(frame(type, payload.length, address, rkey, imm, payload));
    }

    static byte[] frame(int type, int declaredLength, long address, int rkey, int imm, byte[] payload) {
        ByteBuffer b = ByteBuffer.allocate(HEADER + payload.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) type).put((byte) 0).putShort((short) 0).putInt(declaredLength).putLong(address).putInt(rkey)
                .putInt(imm).put(payload);
        return b.array();
    }

    /** @return the next frame, or null when the peer closed the connection */
    Frame read(Duration timeout) throws IOException {
        channel.socket().setSoTimeout((int) timeout.toMillis());
        byte[] h = readFully(HEADER);
        if (h == null) {
            return null;
        }
        ByteBuffer b = ByteBuffer.wrap(h).order(ByteOrder.LITTLE_ENDIAN);
        int type = b.get(0);
        int length = b.getInt(4);
        byte[] payload = readFully(length);
        if (payload == null) {
            return null;
        }
        return new Frame(type, length, b.getLong(8), b.getInt(16), b.getInt(20), payload);
    }

    private byte[] readFully(int n) throws IOException {
        byte[] out = new byte[n];
        int done = 0;
        while (done < n) {
            int r;
            try {
                r = in.read(out, done, n - done);
            } catch (IOException e) {
                if (e instanceof SocketTimeoutException) {
                    throw e;
                }
                return null; // reset by peer counts as closed
            }
            if (r < 0) {
                return null;
            }
            done += r;
        }
        return out;
    }

    /** Reads until the peer closes; returns the ERROR frame seen on the way, if any. Fails on timeout. */
    Frame awaitClose(Duration timeout) throws IOException {
        Frame error = null;
        while (true) {
            Frame f = read(timeout);
            if (f == null) {
                return error;
            }
            if (f.type() == ERROR) {
                error = f;
            }
        }
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
