package io.weft.rdma.verbs.soft;

import io.weft.core.tls.TlsChannel;
import io.weft.rdma.verbs.Access;
import io.weft.rdma.verbs.CompletionHandler;
import io.weft.rdma.verbs.ConnectionBase;
import io.weft.rdma.verbs.ConnectionOptions;
import io.weft.rdma.verbs.MemoryRegion;
import io.weft.rdma.verbs.WcStatus;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ByteChannel;
import java.nio.channels.SelectionKey;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * One software queue pair over a TCP socket. Posts append frames to a send buffer that the owner's poll flushes;
 * the poll also reads whole frames and executes them like an RNIC responder: every RDMA write is checked against the
 * regions of this connection's protection domain (key, access, bounds) before a single byte is copied.
 *
 * <p>With TLS ({@link SoftwareProvider#SoftwareProvider(javax.net.ssl.SSLContext)}) the frames go through a
 * non-blocking {@link TlsChannel} over the same socket: a flush encrypts what fits and leaves ciphertext the socket did
 * not take for the next flush (OP_WRITE stays on), a read decrypts every whole record the socket has, and
 * {@link #hasBufferedFrame} also reports records already read but not yet decrypted, which no selector announces.
 */
final class SoftConnection extends ConnectionBase {
    private static final int MIN_BUFFER = 256 * 1024;

    private final SocketChannel channel;
    /** The socket, or the TLS channel over it: every frame byte goes through this. */
    private final ByteChannel io;
    /** Non-null when the connection runs over TLS. */
    private final TlsChannel tls;
    private final SoftProtectionDomain pd;
    private final SoftCompletionQueue cq;
    private final int maxMessage;

    private final ByteBuffer sendBuffer;
    private final UnsafeBuffer sendView;
    private int sendHead;
    private int sendTail;

    private final ByteBuffer recvBuffer;
    private final UnsafeBuffer recvView;
    private int recvHead;
    private int recvTail;
    private final UnsafeBuffer regionView = new UnsafeBuffer(new byte[0]);

    private final MemoryRegion[] rxRegion;
    private final int[] rxOffset;
    private final int[] rxLength;
    private final long[] rxWrId;
    private int rxHead;
    private int rxCount;

    private SelectionKey key;

    SoftConnection(SocketChannel channel, SoftProtectionDomain pd, SoftCompletionQueue cq, ConnectionOptions options)
            throws IOException {
        this(channel, null, pd, cq, options);
    }

    SoftConnection(SocketChannel channel, TlsChannel tls, SoftProtectionDomain pd, SoftCompletionQueue cq,
                   ConnectionOptions options) throws IOException {
        super((InetSocketAddress) channel.getLocalAddress(), (InetSocketAddress) channel.getRemoteAddress());
        this.channel = channel;
        this.tls = tls;
        this.io = tls != null ? tls : channel;
        this.pd = pd;
        this.cq = cq;
        this.maxMessage = options.maxMessageSize();
        int bufferSize = Math.max(MIN_BUFFER, 2 * (SoftFrame.HEADER_LENGTH + maxMessage));
        this.sendBuffer = ByteBuffer.allocateDirect(bufferSize).order(ByteOrder.LITTLE_ENDIAN);
        this.sendView = new UnsafeBuffer(sendBuffer);
        this.recvBuffer = ByteBuffer.allocateDirect(bufferSize).order(ByteOrder.LITTLE_ENDIAN);
        this.recvView = new UnsafeBuffer(recvBuffer);
        int depth = options.recvQueueDepth();
        rxRegion = new MemoryRegion[depth];
        rxOffset = new int[depth];
        rxLength = new int[depth];
        rxWrId = new long[depth];
    }

    SocketChannel channel() {
        return channel;
    }

    SoftCompletionQueue completionQueue() {
        return cq;
    }

    void peerPrivateData(ByteBuffer data) {
        setPeerPrivateData(data);
    }

    void key(SelectionKey key) {
        this.key = key;
    }

    // ---------------------------------------------------------------- posts (owner thread)

    @Override
    public boolean postSend(MemoryRegion local, int offset, int length) {
        return enqueue(SoftFrame.SEND, local, offset, length, 0, 0, 0);
    }

    @Override
    public boolean postWrite(MemoryRegion local, int offset, int length, long remoteAddress, int rkey) {
        return enqueue(SoftFrame.WRITE, local, offset, length, remoteAddress, rkey, 0);
    }

    @Override
    public boolean postWriteWithImmediate(MemoryRegion local, int offset, int length, long remoteAddress, int rkey,
                                          int immediate) {
        return enqueue(SoftFrame.WRITE_IMM, local, offset, length, remoteAddress, rkey, immediate);
    }

    @Override
    public boolean postReceive(MemoryRegion local, int offset, int length, long wrId) {
        if (failed()) {
            return true;
        }
        if (!pd.owns(local) || offset < 0 || length < 0 || offset > local.length() - length) {
            fail(WcStatus.LOCAL_PROTECTION_ERROR, "receive buffer outside a region of this protection domain");
            return true;
        }
        if (rxCount == rxRegion.length) {
            return false;
        }
        int slot = (rxHead + rxCount) % rxRegion.length;
        rxRegion[slot] = local;
        rxOffset[slot] = offset;
        rxLength[slot] = length;
        rxWrId[slot] = wrId;
        rxCount++;
        return true;
    }

    private boolean enqueue(byte type, MemoryRegion local, int offset, int length, long remoteAddress, int rkey,
                            int immediate) {
        if (failed()) {
            return true; // flushed: the owner learns through onError
        }
        if (length < 0 || length > maxMessage) {
            fail(WcStatus.LOCAL_LENGTH_ERROR, "post of " + length + " bytes exceeds the connection's maximum "
                    + maxMessage);
            return true;
        }
        if (length > 0 && (!pd.owns(local) || offset < 0 || offset > local.length() - length)) {
            fail(WcStatus.LOCAL_PROTECTION_ERROR, "local buffer outside a region of this protection domain");
            return true;
        }
        int frameLength = SoftFrame.HEADER_LENGTH + length;
        if (!reserveSend(frameLength)) {
            return false;
        }
        int at = sendTail;
        sendView.putByte(at + SoftFrame.TYPE_OFFSET, type);
        sendView.putByte(at + 1, (byte) 0);
        sendView.putShort(at + 2, (short) 0, ByteOrder.LITTLE_ENDIAN);
        sendView.putInt(at + SoftFrame.LENGTH_OFFSET, length, ByteOrder.LITTLE_ENDIAN);
        sendView.putLong(at + SoftFrame.ADDRESS_OFFSET, remoteAddress, ByteOrder.LITTLE_ENDIAN);
        sendView.putInt(at + SoftFrame.RKEY_OFFSET, rkey, ByteOrder.LITTLE_ENDIAN);
        sendView.putInt(at + SoftFrame.IMMEDIATE_OFFSET, immediate, ByteOrder.LITTLE_ENDIAN);
        if (length > 0) {
            sendView.putBytes(at + SoftFrame.HEADER_LENGTH, local.buffer(), offset, length);
        }
        sendTail = at + frameLength;
        return true;
    }

    private boolean reserveSend(int frameLength) {
        if (sendBuffer.capacity() - sendTail >= frameLength) {
            return true;
        }
        if (sendHead > 0) {
            int pending = sendTail - sendHead;
            sendView.putBytes(0, sendView, sendHead, pending);
            sendHead = 0;
            sendTail = pending;
        }
        return sendBuffer.capacity() - sendTail >= frameLength;
    }

    /** A whole frame is already buffered (a poll stopped at its completion budget): do not sleep on the socket. */
    boolean hasBufferedFrame() {
        if (failed()) {
            return false;
        }
        if (tls != null && tls.hasBufferedInput()) {
            return true;
        }
        if (recvTail - recvHead < SoftFrame.HEADER_LENGTH) {
            return false;
        }
        int length = recvView.getInt(recvHead + SoftFrame.LENGTH_OFFSET, ByteOrder.LITTLE_ENDIAN);
        return length < 0 || length > maxMessage || recvTail - recvHead >= SoftFrame.HEADER_LENGTH + length;
    }

    boolean hasPendingSend() {
        return (sendTail > sendHead || (tls != null && tls.hasPendingOutput())) && !failed();
    }

    // ---------------------------------------------------------------- progress (owner thread)

    /** Flushes, reads and executes frames; returns work done. */
    int progress(CompletionHandler handler, int budget) {
        if (closeRequested() && !failed()) {
            fail(WcStatus.WR_FLUSH_ERROR, "connection closed locally");
        }
        if (failed()) {
            return 0;
        }
        int work = flush();
        work += read();
        work += execute(handler, budget);
        work += flush();
        return work;
    }

    int flush() {
        if (failed() || (sendTail == sendHead && (tls == null || !tls.hasPendingOutput()))) {
            return 0;
        }
        try {
            int written = 0;
            if (sendTail > sendHead) {
                sendBuffer.limit(sendTail).position(sendHead);
                written = io.write(sendBuffer);
                sendHead += written;
            }
            boolean cipherPending = tls != null && !tls.flush();
            if (sendHead == sendTail) {
                sendHead = 0;
                sendTail = 0;
            }
            if (sendHead == sendTail && !cipherPending) {
                interest(SelectionKey.OP_READ);
            } else {
                interest(SelectionKey.OP_READ | SelectionKey.OP_WRITE);
            }
            return written > 0 ? 1 : 0;
        } catch (IOException e) {
            fail(WcStatus.TRANSPORT_ERROR, "send failed: " + e.getMessage());
            return 1;
        }
    }

    private void interest(int ops) {
        SelectionKey k = key;
        if (k != null && k.isValid() && k.interestOps() != ops) {
            k.interestOps(ops);
        }
    }

    private int read() {
        if (recvBuffer.capacity() - recvTail < SoftFrame.HEADER_LENGTH + maxMessage && recvHead > 0) {
            int pending = recvTail - recvHead;
            recvView.putBytes(0, recvView, recvHead, pending);
            recvHead = 0;
            recvTail = pending;
        }
        if (recvTail == recvBuffer.capacity()) {
            return 0;
        }
        try {
            recvBuffer.limit(recvBuffer.capacity()).position(recvTail);
            int n = io.read(recvBuffer);
            if (n < 0) {
                fail(WcStatus.TRANSPORT_ERROR, recvTail > recvHead
                        ? "peer closed the connection in the middle of a frame" : "peer closed the connection");
                return 1;
            }
            recvTail += n;
            int total = n;
            // TLS hands out a record or so per read: take every whole record the socket brought while there is
            // room (an end of stream now shows at the next poll).
            while (tls != null && n > 0 && recvTail < recvBuffer.capacity()) {
                n = io.read(recvBuffer);
                if (n > 0) {
                    recvTail += n;
                    total += n;
                }
            }
            return total > 0 ? 1 : 0;
        } catch (IOException e) {
            fail(WcStatus.TRANSPORT_ERROR, "receive failed: " + e.getMessage());
            return 1;
        }
    }

    private int execute(CompletionHandler handler, int budget) {
        int done = 0;
        while (done < budget && !failed() && recvTail - recvHead >= SoftFrame.HEADER_LENGTH) {
            int at = recvHead;
            byte type = recvView.getByte(at + SoftFrame.TYPE_OFFSET);
            int length = recvView.getInt(at + SoftFrame.LENGTH_OFFSET, ByteOrder.LITTLE_ENDIAN);
            if (length < 0 || length > maxMessage) {
                protocolError("frame length " + length + " outside [0, " + maxMessage + "]");
                break;
            }
            if (recvTail - at < SoftFrame.HEADER_LENGTH + length) {
                break; // rest of the frame not here yet
            }
            recvHead = at + SoftFrame.HEADER_LENGTH + length;
            executeFrame(handler, type, at, length);
            done++;
        }
        if (recvHead == recvTail) {
            recvHead = 0;
            recvTail = 0;
        }
        return done;
    }

    private void executeFrame(CompletionHandler handler, byte type, int at, int length) {
        int payload = at + SoftFrame.HEADER_LENGTH;
        switch (type) {
            case SoftFrame.WRITE:
            case SoftFrame.WRITE_IMM: {
                long address = recvView.getLong(at + SoftFrame.ADDRESS_OFFSET, ByteOrder.LITTLE_ENDIAN);
                int rkey = recvView.getInt(at + SoftFrame.RKEY_OFFSET, ByteOrder.LITTLE_ENDIAN);
                int immediate = recvView.getInt(at + SoftFrame.IMMEDIATE_OFFSET, ByteOrder.LITTLE_ENDIAN);
                if (length > 0 && !placeWrite(address, rkey, payload, length)) {
                    return;
                }
                if (type == SoftFrame.WRITE_IMM) {
                    if (rxCount == 0) {
                        remoteError(WcStatus.RNR_RETRY_EXCEEDED, "write-with-immediate arrived with no receive posted");
                        return;
                    }
                    long wrId = rxWrId[rxHead];
                    consumeReceive();
                    handler.onWriteWithImmediate(this, wrId, immediate, length);
                }
                return;
            }
            case SoftFrame.SEND: {
                if (rxCount == 0) {
                    remoteError(WcStatus.RNR_RETRY_EXCEEDED, "send arrived with no receive posted");
                    return;
                }
                if (length > rxLength[rxHead]) {
                    remoteError(WcStatus.LOCAL_LENGTH_ERROR,
                            "send of " + length + " bytes exceeds the posted receive of " + rxLength[rxHead]);
                    return;
                }
                MemoryRegion region = rxRegion[rxHead];
                regionView.wrap(region.buffer());
                recvView.getBytes(payload, regionView, rxOffset[rxHead], length);
                long wrId = rxWrId[rxHead];
                consumeReceive();
                handler.onReceive(this, wrId, length);
                return;
            }
            case SoftFrame.ERROR: {
                int status = recvView.getInt(at + SoftFrame.IMMEDIATE_OFFSET, ByteOrder.LITTLE_ENDIAN);
                int reasonLength = Math.min(length, SoftFrame.MAX_REASON);
                String reason = recvView.getStringWithoutLengthUtf8(payload, reasonLength);
                fail(status >= 0 && status <= WcStatus.PROTOCOL_ERROR ? status : WcStatus.PROTOCOL_ERROR,
                        "peer reported: " + reason);
                return;
            }
            default:
                protocolError("unexpected frame type " + type);
        }
    }

    /** The RNIC responder's checks: known key in this domain, remote-write access, whole range inside the region. */
    private boolean placeWrite(long address, int rkey, int payload, int length) {
        SoftMemoryRegion region = pd.find(rkey);
        if (region == null) {
            remoteError(WcStatus.REMOTE_ACCESS_ERROR, "RDMA write with unknown rkey 0x" + Integer.toHexString(rkey));
            return false;
        }
        if ((region.access() & Access.REMOTE_WRITE) == 0) {
            remoteError(WcStatus.REMOTE_ACCESS_ERROR, "RDMA write into a region without remote-write access");
            return false;
        }
        if (!region.contains(address, length)) {
            remoteError(WcStatus.REMOTE_ACCESS_ERROR, "RDMA write of " + length + " bytes at 0x"
                    + Long.toHexString(address) + " outside the region of rkey 0x" + Integer.toHexString(rkey));
            return false;
        }
        regionView.wrap(region.buffer());
        recvView.getBytes(payload, regionView, (int) (address - region.address()), length);
        return true;
    }

    private void consumeReceive() {
        rxRegion[rxHead] = null;
        rxHead = (rxHead + 1) % rxRegion.length;
        rxCount--;
    }

    private void protocolError(String reason) {
        remoteError(WcStatus.PROTOCOL_ERROR, "malformed traffic: " + reason);
    }

    /** Tells the peer why (best effort, non-blocking) and fails the connection locally. */
    private void remoteError(int status, String reason) {
        try {
            byte[] text = reason.getBytes(StandardCharsets.UTF_8);
            int length = Math.min(text.length, SoftFrame.MAX_REASON);
            ByteBuffer frame = ByteBuffer.allocate(SoftFrame.HEADER_LENGTH + length).order(ByteOrder.LITTLE_ENDIAN);
            frame.put(SoftFrame.TYPE_OFFSET, SoftFrame.ERROR);
            frame.putInt(SoftFrame.LENGTH_OFFSET, length);
            frame.putInt(SoftFrame.IMMEDIATE_OFFSET, status);
            frame.put(SoftFrame.HEADER_LENGTH, text, 0, length);
            if (sendTail == sendHead) {
                io.write(frame);
                if (tls != null) {
                    tls.flush();
                }
            }
        } catch (IOException | RuntimeException e) {
            // The peer is already gone; the local failure below is what matters.
        }
        fail(status, reason);
    }

    void fail(int status, String reason) {
        if (!recordFailure(status, reason)) {
            return;
        }
        try {
            channel.close();
        } catch (IOException e) {
            // Closing a broken socket cannot fail in a way we could act on.
        }
    }

    // ---------------------------------------------------------------- VerbsConnection

    @Override
    public void close() {
        requestClose();
        try {
            channel.shutdownOutput();
        } catch (IOException e) {
            // Already closed.
        }
        cq.wakeup();
    }

    @Override
    public String toString() {
        return "software connection " + localAddress() + " -> " + remoteAddress();
    }
}
