package io.weft.core.nbd;

import io.weft.core.tls.TlsChannel;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import javax.net.ssl.SSLContext;

/** A deliberately low-level NBD client for protocol tests: every byte on the wire is under the test's control. */
final class RawNbdClient implements AutoCloseable {
    static final long NBDMAGIC = 0x4e42444d41474943L;
    static final long IHAVEOPT = 0x49484156454F5054L;
    static final long OPTION_REPLY_MAGIC = 0x3e889045565a9L;

    final SocketChannel channel;
    /** The socket, or after {@link #startTls} the TLS channel over it. */
    private ByteChannel wire;
    int handshakeFlags;

    /** One option reply. */
    record OptionReply(int option, int type, byte[] data) {
        ByteBuffer buffer() {
            return ByteBuffer.wrap(data);
        }
    }

    /** One transmission reply (simple, or one structured chunk). */
    record Reply(boolean structured, int flags, int type, long handle, int error, byte[] payload) {
        boolean done() {
            return !structured || (flags & 1) != 0;
        }
    }

    /** Export size and flags from GO / EXPORT_NAME. */
    record ExportInfo(long size, int flags) {
    }

    private RawNbdClient(SocketChannel channel) {
        this.channel = channel;
        this.wire = channel;
    }

    /**
     * Sends NBD_OPT_STARTTLS and returns the server's reply; on an ACK runs the TLS handshake (a JDK client with
     * {@code context}), after which every byte goes through TLS.
     */
    OptionReply startTls(SSLContext context) throws IOException {
        sendOption(NbdProtocol.OPT_STARTTLS, new byte[0]);
        OptionReply r = readOptionReply();
        if (r.type() == NbdProtocol.REP_ACK) {
            wire = TlsChannel.clientHandshake(channel, context, "localhost", 0);
        }
        return r;
    }

    static RawNbdClient connect(SocketAddress address) throws IOException {
        SocketChannel ch = address instanceof UnixDomainSocketAddress
                ? SocketChannel.open(StandardProtocolFamily.UNIX) : SocketChannel.open();
        ch.connect(address);
        return new RawNbdClient(ch);
    }

    static RawNbdClient connect(InetSocketAddress address) throws IOException {
        return connect((SocketAddress) address);
    }

    /** Reads the greeting and checks its magic numbers; returns the handshake flags. */
    int readGreeting() throws IOException {
        ByteBuffer g = readFully(18);
        if (g.getLong() != NBDMAGIC || g.getLong() != IHAVEOPT) {
            throw new IOException("bad greeting");
        }
        handshakeFlags = g.getShort() & 0xffff;
        return handshakeFlags;
    }

    void sendClientFlags(int flags) throws IOException {
        write(ByteBuffer.allocate(4).putInt(flags).flip());
    }

    /** Greeting + client flags (fixed newstyle, no zeroes). */
    RawNbdClient start() throws IOException {
        readGreeting();
        sendClientFlags(3);
        return this;
    }

    void sendOption(int option, byte[] data) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(16 + data.length);
        b.putLong(IHAVEOPT).putInt(option).putInt(data.length).put(data).flip();
        write(b);
    }

    OptionReply readOptionReply() throws IOException {
        ByteBuffer h = readFully(20);
        long magic = h.getLong();
        if (magic != OPTION_REPLY_MAGIC) {
            throw new IOException("bad option reply magic " + Long.toHexString(magic));
        }
        int option = h.getInt();
        int type = h.getInt();
        int len = h.getInt();
        byte[] data = new byte[len];
        readFully(len).get(data);
        return new OptionReply(option, type, data);
    }

    /** Reads replies up to and including the first that is not REP_INFO/SERVER/META_CONTEXT. */
    List<OptionReply> readOptionReplies() throws IOException {
        List<OptionReply> all = new ArrayList<>();
        while (true) {
            OptionReply r = readOptionReply();
            all.add(r);
            if (r.type() != NbdProtocol.REP_INFO && r.type() != NbdProtocol.REP_SERVER
                    && r.type() != NbdProtocol.REP_META_CONTEXT) {
                return all;
            }
        }
    }

    static byte[] infoRequest(String name, int... infos) {
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(4 + n.length + 2 + 2 * infos.length);
        b.putInt(n.length).put(n).putShort((short) infos.length);
        for (int i : infos) {
            b.putShort((short) i);
        }
        return b.array();
    }

    static byte[] metaRequest(String name, String... queries) {
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        int len = 4 + n.length + 4;
        for (String q : queries) {
            len += 4 + q.getBytes(StandardCharsets.UTF_8).length;
        }
        ByteBuffer b = ByteBuffer.allocate(len);
        b.putInt(n.length).put(n).putInt(queries.length);
        for (String q : queries) {
            byte[] qb = q.getBytes(StandardCharsets.UTF_8);
            b.putInt(qb.length).put(qb);
        }
        return b.array();
    }

    /** Finds NBD_INFO_EXPORT among INFO/GO replies. */
    static ExportInfo exportInfo(List<OptionReply> replies) {
        for (OptionReply r : replies) {
            if (r.type() == NbdProtocol.REP_INFO) {
                ByteBuffer b = r.buffer();
                if (b.getShort() == NbdProtocol.INFO_EXPORT) {
                    return new ExportInfo(b.getLong(), b.getShort() & 0xffff);
                }
            }
        }
        return null;
    }

    /** Negotiates (optionally) structured replies and base:allocation, then GO. */
    ExportInfo go(String export, boolean structured, boolean baseAllocation) throws IOException {
        start();
        if (structured) {
            sendOption(NbdProtocol.OPT_STRUCTURED_REPLY, new byte[0]);
            expect(readOptionReply(), NbdProtocol.REP_ACK);
        }
        if (baseAllocation) {
            sendOption(NbdProtocol.OPT_SET_META_CONTEXT, metaRequest(export, NbdProtocol.BASE_ALLOCATION));
            List<OptionReply> r = readOptionReplies();
            expect(r.get(r.size() - 1), NbdProtocol.REP_ACK);
        }
        return goAfterStart(export);
    }

    /** GO (asking for block sizes) once the greeting is done; expects success. */
    ExportInfo goAfterStart(String export) throws IOException {
        sendOption(NbdProtocol.OPT_GO, infoRequest(export, NbdProtocol.INFO_BLOCK_SIZE));
        List<OptionReply> replies = readOptionReplies();
        expect(replies.get(replies.size() - 1), NbdProtocol.REP_ACK);
        return exportInfo(replies);
    }

    /** GO listing exactly {@code infos} as information requests (none: the client did not ask for block sizes). */
    ExportInfo goWithInfos(String export, int... infos) throws IOException {
        start();
        sendOption(NbdProtocol.OPT_GO, infoRequest(export, infos));
        List<OptionReply> replies = readOptionReplies();
        expect(replies.get(replies.size() - 1), NbdProtocol.REP_ACK);
        return exportInfo(replies);
    }

    /** The old NBD_OPT_EXPORT_NAME (no block sizes, no error path); the greeting must not be done yet. */
    ExportInfo exportName(String export) throws IOException {
        start();
        sendOption(NbdProtocol.OPT_EXPORT_NAME, export.getBytes(StandardCharsets.UTF_8));
        ByteBuffer b = readFully(10); // NO_ZEROES was negotiated by start()
        return new ExportInfo(b.getLong(), b.getShort() & 0xffff);
    }

    /** Simple-reply request without payload (TRIM, WRITE_ZEROES, CACHE, FLUSH); returns the error. */
    int command(int type, int flags, long offset, long length, long handle) throws IOException {
        sendRequest(flags, type, handle, offset, (int) length, null);
        Reply r = readReply(0);
        if (r.handle() != handle) {
            throw new IOException("reply for handle " + r.handle() + ", expected " + handle);
        }
        return r.error();
    }

    static void expect(OptionReply r, int type) throws IOException {
        if (r.type() != type) {
            throw new IOException("expected reply type " + Integer.toHexString(type) + " but got "
                    + Integer.toHexString(r.type()) + ": " + new String(r.data(), StandardCharsets.UTF_8));
        }
    }

    void sendRequest(int flags, int type, long handle, long offset, int length, byte[] payload) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(28 + (payload == null ? 0 : payload.length));
        NbdRequestHeader.encode(b, 0, flags, type, handle, offset, length);
        b.position(28);
        if (payload != null) {
            b.put(payload);
        }
        b.flip();
        write(b);
    }

    /**
     * Reads one reply. For a simple reply the caller says how many data bytes follow a successful READ
     * ({@code readLength}), since simple replies do not carry a length.
     */
    Reply readReply(int readLength) throws IOException {
        ByteBuffer m = readFully(4);
        int magic = m.getInt();
        if (magic == NbdProtocol.SIMPLE_REPLY_MAGIC) {
            ByteBuffer h = readFully(12);
            int error = h.getInt();
            long handle = h.getLong();
            byte[] data = new byte[error == 0 ? readLength : 0];
            readFully(data.length).get(data);
            return new Reply(false, 0, 0, handle, error, data);
        }
        if (magic == NbdProtocol.STRUCTURED_REPLY_MAGIC) {
            ByteBuffer h = readFully(16);
            int flags = h.getShort() & 0xffff;
            int type = h.getShort() & 0xffff;
            long handle = h.getLong();
            int len = h.getInt();
            byte[] payload = new byte[len];
            readFully(len).get(payload);
            int error = 0;
            if ((type & 0x8000) != 0) {
                error = ByteBuffer.wrap(payload).getInt();
            }
            return new Reply(true, flags, type, handle, error, payload);
        }
        throw new IOException("bad reply magic " + Integer.toHexString(magic));
    }

    /** Simple-reply WRITE, expecting success. */
    void write(long offset, byte[] data, long handle) throws IOException {
        sendRequest(0, NbdProtocol.CMD_WRITE, handle, offset, data.length, data);
        Reply r = readReply(0);
        if (r.error() != 0 || r.handle() != handle) {
            throw new IOException("write failed: error " + r.error());
        }
    }

    /** Simple-reply READ, expecting success. */
    byte[] read(long offset, int length, long handle) throws IOException {
        sendRequest(0, NbdProtocol.CMD_READ, handle, offset, length, null);
        Reply r = readReply(length);
        if (r.error() != 0 || r.handle() != handle) {
            throw new IOException("read failed: error " + r.error());
        }
        return r.payload();
    }

    void disconnect() throws IOException {
        sendRequest(0, NbdProtocol.CMD_DISC, 0, 0, 0, null);
    }

    /** True when the server has closed the connection (reads end of stream, or the connection was reset). */
    boolean closedByServer() {
        try {
            ByteBuffer b = ByteBuffer.allocate(1);
            return wire.read(b) < 0;
        } catch (IOException e) {
            return true;
        }
    }

    void write(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            wire.write(b);
        }
    }

    void writeRaw(byte[] bytes) throws IOException {
        write(ByteBuffer.wrap(bytes));
    }

    ByteBuffer readFully(int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (wire.read(b) < 0) {
                throw new EOFException("server closed the connection");
            }
        }
        return b.flip();
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
