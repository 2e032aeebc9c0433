package io.weft.core.nbd;

import io.weft.core.io.DeviceInfo;
import io.weft.core.tls.TlsChannel;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The fixed newstyle handshake of one connection: server greeting, client flags, then option haggling until the
 * client picks an export (GO / EXPORT_NAME) or leaves. Control path: it allocates freely and blocks on the socket.
 *
 * <p>Greeting (server, 18 bytes): {@code "NBDMAGIC"} (8) | {@code "IHAVEOPT"} (8) | handshake flags (2).
 * Client flags: 4 bytes. Each option (client): {@code "IHAVEOPT"} (8) | option (4) | data length (4) | data.
 * Each option reply (server): magic {@code 0x3e889045565a9} (8) | option (4) | reply type (4) | length (4) | data.
 *
 * <p>TLS ({@link NbdTls}): NBD_OPT_STARTTLS is answered with an ACK in plaintext, then the TLS handshake runs on the
 * same socket and every later byte (options, then transmission) goes through {@link #tls()}. As the protocol asks,
 * what was negotiated before STARTTLS (structured replies, the meta context) is forgotten. Under
 * {@link NbdTls.Mode#REQUIRE} every other option but ABORT is refused with NBD_REP_ERR_TLS_REQD until TLS is up.
 */
final class NbdHandshake {
    /** Options carrying more data than this are refused with ERR_TOO_BIG (names and queries are at most 4 KiB). */
    static final int MAX_OPTION_DATA = 64 << 10;

    /**
     * What the client negotiated; {@code null} from {@link #negotiate} means it left without choosing.
     * {@code blockSizeAgreed}: the client asked for {@code NBD_INFO_BLOCK_SIZE} in its GO, so it promised to honour
     * the constraints (EXPORT_NAME, or GO without that request, did not: such a client gets the protocol's defaults,
     * minimum block size 1).
     */
    record Result(NbdExport export, boolean structuredReplies, boolean baseAllocation, int transmissionFlags,
                  int maxPayload, boolean blockSizeAgreed) {
    }

    /** A breach of the protocol that ends this connection at once (a hard disconnect). */
    static final class ProtocolViolation extends IOException {
        private static final long serialVersionUID = 1L;

        ProtocolViolation(String message) {
            super(message);
        }
    }

    private final SocketChannel socket;
    /** The socket, or after STARTTLS the TLS channel over it. */
    private ByteChannel channel;
    private TlsChannel tls;
    private final NbdServer server;
    private boolean structured;
    private boolean noZeroes;
    /** Export the last successful SET_META_CONTEXT referred to, when it selected base:allocation. */
    private String metaExport;

    NbdHandshake(SocketChannel socket, NbdServer server) {
        this.socket = socket;
        this.channel = socket;
        this.server = server;
    }

    /** The TLS channel the client started with NBD_OPT_STARTTLS, or null when the connection is plaintext. */
    TlsChannel tls() {
        return tls;
    }

    Result negotiate() throws IOException {
        ByteBuffer greeting = ByteBuffer.allocate(18);
        greeting.putLong(NbdProtocol.NBDMAGIC).putLong(NbdProtocol.IHAVEOPT)
                .putShort((short) (NbdProtocol.FLAG_FIXED_NEWSTYLE | NbdProtocol.FLAG_NO_ZEROES)).flip();
        writeFully(greeting);
        int clientFlags = readFully(4).getInt();
        if ((clientFlags & ~(NbdProtocol.CLIENT_FLAG_FIXED_NEWSTYLE | NbdProtocol.CLIENT_FLAG_NO_ZEROES)) != 0) {
            throw new ProtocolViolation("unknown client flags 0x" + Integer.toHexString(clientFlags));
        }
        noZeroes = (clientFlags & NbdProtocol.CLIENT_FLAG_NO_ZEROES) != 0;
        while (true) {
            ByteBuffer head = readFully(16);
            long magic = head.getLong();
            int option = head.getInt();
            long length = head.getInt() & 0xffffffffL;
            if (magic != NbdProtocol.IHAVEOPT) {
                throw new ProtocolViolation("bad option magic 0x" + Long.toHexString(magic));
            }
            Result result = handleOption(option, length);
            if (result != null) {
                return result.export() == null ? null : result;
            }
        }
    }

    /** @return null to keep haggling, a Result to enter transmission, a Result with a null export to end */
    private Result handleOption(int option, long length) throws IOException {
        if (tls == null && server.tls().mode() == NbdTls.Mode.REQUIRE && option != NbdProtocol.OPT_STARTTLS
                && option != NbdProtocol.OPT_ABORT) {
            if (option == NbdProtocol.OPT_EXPORT_NAME) {
                // EXPORT_NAME cannot carry an error: the protocol mandates a hard disconnect.
                throw new ProtocolViolation("NBD_OPT_EXPORT_NAME without TLS (weft.nbd.tls = require)");
            }
            skip(length);
            replyError(option, NbdProtocol.REP_ERR_TLS_REQD,
                    "TLS is required (weft.nbd.tls = require): send NBD_OPT_STARTTLS first");
            return null;
        }
        switch (option) {
            case NbdProtocol.OPT_STARTTLS:
                startTls(length);
                return null;
            case NbdProtocol.OPT_EXPORT_NAME:
                return exportName(length);
            case NbdProtocol.OPT_ABORT:
                skip(length);
                try {
                    reply(option, NbdProtocol.REP_ACK, null);
                } catch (IOException e) {
                    // The client may close without waiting for the ACK; the protocol allows both.
                }
                return new Result(null, false, false, 0, 0, false);
            case NbdProtocol.OPT_LIST:
                if (length != 0) {
                    skip(length);
                    replyError(option, NbdProtocol.REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
                    return null;
                }
                for (NbdExport export : server.exportsSnapshot()) {
                    byte[] name = utf8(export.name());
                    byte[] description = utf8(export.description());
                    ByteBuffer data = ByteBuffer.allocate(4 + name.length + description.length);
                    data.putInt(name.length).put(name).put(description).flip();
                    reply(option, NbdProtocol.REP_SERVER, data);
                }
                reply(option, NbdProtocol.REP_ACK, null);
                return null;
            case NbdProtocol.OPT_STRUCTURED_REPLY:
                if (length != 0) {
                    skip(length);
                    replyError(option, NbdProtocol.REP_ERR_INVALID, "NBD_OPT_STRUCTURED_REPLY takes no data");
                    return null;
                }
                structured = true;
                reply(option, NbdProtocol.REP_ACK, null);
                return null;
            case NbdProtocol.OPT_INFO:
            case NbdProtocol.OPT_GO:
                return infoOrGo(option, length);
            case NbdProtocol.OPT_LIST_META_CONTEXT:
            case NbdProtocol.OPT_SET_META_CONTEXT:
                metaContext(option, length);
                return null;
            default:
                // Unknown (or deliberately unsupported, e.g. EXTENDED_HEADERS): say so and go on.
                skip(length);
                replyError(option, NbdProtocol.REP_ERR_UNSUP, "option " + option + " is not supported");
                return null;
        }
    }

    /**
     * NBD_OPT_STARTTLS: ACK in plaintext, then the TLS handshake (blocking, bounded by the handshake timeout like the
     * rest of the negotiation). A failed handshake ends the connection, as the protocol requires.
     */
    private void startTls(long length) throws IOException {
        if (length != 0) {
            skip(length);
            replyError(NbdProtocol.OPT_STARTTLS, NbdProtocol.REP_ERR_INVALID, "NBD_OPT_STARTTLS takes no data");
            return;
        }
        NbdTls policy = server.tls();
        if (policy.mode() == NbdTls.Mode.OFF) {
            replyError(NbdProtocol.OPT_STARTTLS, NbdProtocol.REP_ERR_UNSUP, "TLS is off (weft.nbd.tls = off)");
            return;
        }
        if (tls != null) {
            replyError(NbdProtocol.OPT_STARTTLS, NbdProtocol.REP_ERR_INVALID, "TLS is already negotiated");
            return;
        }
        reply(NbdProtocol.OPT_STARTTLS, NbdProtocol.REP_ACK, null);
        try {
            tls = TlsChannel.serverHandshake(socket, policy.context(), policy.verifyPeer());
        } catch (javax.net.ssl.SSLException e) {
            throw new ProtocolViolation("TLS handshake failed: " + e.getMessage()
                    + (policy.verifyPeer() ? " (weft.nbd.tls-verify-peer = on)" : ""));
        }
        channel = tls;
        // The protocol: whatever was negotiated in plaintext is forgotten once TLS is up.
        structured = false;
        metaExport = null;
    }

    private Result exportName(long length) throws IOException {
        if (length > NbdProtocol.MAX_STRING) {
            throw new ProtocolViolation("NBD_OPT_EXPORT_NAME name of " + length + " bytes");
        }
        String name = decodeName(readFully((int) length));
        NbdExport export = name == null ? null : server.lookupExport(name);
        if (export == null || server.isClosing()) {
            // EXPORT_NAME cannot carry an error: the protocol mandates a hard disconnect.
            throw new ProtocolViolation("NBD_OPT_EXPORT_NAME for unknown export '" + name + "'");
        }
        DeviceInfo info = export.device().info();
        int flags = transmissionFlags(info, structured);
        ByteBuffer data = ByteBuffer.allocate(noZeroes ? 10 : 134);
        data.putLong(info.size()).putShort((short) flags);
        data.position(data.capacity()).flip();
        writeFully(data);
        return result(export, info, flags, false);
    }

    private Result result(NbdExport export, DeviceInfo info, int flags, boolean blockSizeAgreed) {
        boolean meta = structured && export.name().equals(metaExport);
        return new Result(export, structured, meta, flags, server.maxPayload(info), blockSizeAgreed);
    }

    private Result infoOrGo(int option, long length) throws IOException {
        if (length < 6 || length > MAX_OPTION_DATA) {
            skip(length);
            replyError(option, length < 6 ? NbdProtocol.REP_ERR_INVALID : NbdProtocol.REP_ERR_TOO_BIG,
                    "malformed NBD_OPT_INFO/GO");
            return null;
        }
        ByteBuffer data = readFully((int) length);
        long nameLength = data.getInt() & 0xffffffffL;
        if (nameLength > length - 6 || nameLength > NbdProtocol.MAX_STRING) {
            replyError(option, NbdProtocol.REP_ERR_INVALID, "export name length exceeds the option");
            return null;
        }
        byte[] nameBytes = new byte[(int) nameLength];
        data.get(nameBytes);
        int requests = data.getShort() & 0xffff;
        if (data.remaining() != requests * 2L) {
            replyError(option, NbdProtocol.REP_ERR_INVALID, "information request list does not match the length");
            return null;
        }
        boolean wantName = false;
        boolean wantDescription = false;
        boolean wantBlockSize = false;
        for (int i = 0; i < requests; i++) {
            int info = data.getShort() & 0xffff;
            wantName |= info == NbdProtocol.INFO_NAME;
            wantDescription |= info == NbdProtocol.INFO_DESCRIPTION;
            wantBlockSize |= info == NbdProtocol.INFO_BLOCK_SIZE;
        }
        if (server.isClosing()) {
            replyError(option, NbdProtocol.REP_ERR_SHUTDOWN, "server is shutting down");
            return null;
        }
        String name = decodeName(ByteBuffer.wrap(nameBytes));
        NbdExport export = name == null ? null : server.lookupExport(name);
        if (export == null) {
            replyError(option, NbdProtocol.REP_ERR_UNKNOWN, "no export named '" + name + "'");
            return null;
        }
        DeviceInfo info = export.device().info();
        int flags = transmissionFlags(info, structured);
        int maxPayload = server.maxPayload(info);

        ByteBuffer exportInfo = ByteBuffer.allocate(12);
        exportInfo.putShort((short) NbdProtocol.INFO_EXPORT).putLong(info.size()).putShort((short) flags).flip();
        reply(option, NbdProtocol.REP_INFO, exportInfo);
        if (wantName) {
            byte[] canonical = utf8(export.name());
            ByteBuffer b = ByteBuffer.allocate(2 + canonical.length);
            b.putShort((short) NbdProtocol.INFO_NAME).put(canonical).flip();
            reply(option, NbdProtocol.REP_INFO, b);
        }
        if (wantDescription && !export.description().isEmpty()) {
            byte[] description = utf8(export.description());
            ByteBuffer b = ByteBuffer.allocate(2 + description.length);
            b.putShort((short) NbdProtocol.INFO_DESCRIPTION).put(description).flip();
            reply(option, NbdProtocol.REP_INFO, b);
        }
        // Always sent (allowed unrequested): clients that honour it avoid unaligned and oversized requests. Only a
        // client that asked for it has agreed to it; the others get the defaults (see NbdConnection).
        ByteBuffer blockSize = ByteBuffer.allocate(14);
        blockSize.putShort((short) NbdProtocol.INFO_BLOCK_SIZE).putInt(info.logicalBlockSize())
                .putInt(Math.max(info.preferredBlockSize(), 512)).putInt(maxPayload).flip();
        reply(option, NbdProtocol.REP_INFO, blockSize);
        reply(option, NbdProtocol.REP_ACK, null);
        return option == NbdProtocol.OPT_GO ? result(export, info, flags, wantBlockSize) : null;
    }

    private void metaContext(int option, long length) throws IOException {
        boolean set = option == NbdProtocol.OPT_SET_META_CONTEXT;
        if (set) {
            metaExport = null; // SET replaces the selection even when it fails
        }
        if (length > MAX_OPTION_DATA) {
            skip(length);
            replyError(option, NbdProtocol.REP_ERR_TOO_BIG, "meta context request too large");
            return;
        }
        ByteBuffer data = readFully((int) length);
        if (set && !structured) {
            replyError(option, NbdProtocol.REP_ERR_INVALID, "negotiate NBD_OPT_STRUCTURED_REPLY first");
            return;
        }
        byte[] nameBytes = readString(data);
        List<String> queries = new ArrayList<>();
        boolean valid = nameBytes != null && data.remaining() >= 4;
        if (valid) {
            long count = data.getInt() & 0xffffffffL;
            for (long i = 0; i < count && valid; i++) {
                byte[] q = readString(data);
                String query = q == null ? null : decodeName(ByteBuffer.wrap(q));
                valid = query != null;
                if (valid) {
                    queries.add(query);
                }
            }
            valid &= !data.hasRemaining();
        }
        if (!valid) {
            replyError(option, NbdProtocol.REP_ERR_INVALID, "malformed meta context request");
            return;
        }
        String name = decodeName(ByteBuffer.wrap(nameBytes));
        NbdExport export = name == null ? null : server.lookupExport(name);
        if (export == null) {
            replyError(option, NbdProtocol.REP_ERR_UNKNOWN, "no export named '" + name + "'");
            return;
        }
        boolean match;
        if (set) {
            match = queries.contains(NbdProtocol.BASE_ALLOCATION);
        } else {
            // For LIST, no query lists everything and "base:" is the namespace wildcard.
            match = queries.isEmpty() || queries.contains(NbdProtocol.BASE_ALLOCATION) || queries.contains("base:");
        }
        if (match) {
            byte[] ctx = utf8(NbdProtocol.BASE_ALLOCATION);
            ByteBuffer b = ByteBuffer.allocate(4 + ctx.length);
            b.putInt(set ? NbdProtocol.BASE_ALLOCATION_ID : 0).put(ctx).flip();
            reply(option, NbdProtocol.REP_META_CONTEXT, b);
            if (set) {
                metaExport = export.name();
            }
        }
        reply(option, NbdProtocol.REP_ACK, null);
    }

    /** Reads a 32-bit length and that many bytes, or returns null when they do not fit the option data. */
    private static byte[] readString(ByteBuffer data) {
        if (data.remaining() < 4) {
            return null;
        }
        long len = data.getInt() & 0xffffffffL;
        if (len > data.remaining() || len > NbdProtocol.MAX_STRING) {
            return null;
        }
        byte[] b = new byte[(int) len];
        data.get(b);
        return b;
    }

    /** Transmission flags for an export; INFO, GO and EXPORT_NAME all use this, so they always agree. */
    static int transmissionFlags(DeviceInfo info, boolean structured) {
        int flags = NbdProtocol.TFLAG_HAS_FLAGS | NbdProtocol.TFLAG_SEND_CACHE;
        if (info.readOnly()) {
            flags |= NbdProtocol.TFLAG_READ_ONLY;
        } else {
            if (info.canFlush()) {
                flags |= NbdProtocol.TFLAG_SEND_FLUSH;
            }
            if (info.canFua()) {
                flags |= NbdProtocol.TFLAG_SEND_FUA;
            }
            if (info.canDiscard()) {
                flags |= NbdProtocol.TFLAG_SEND_TRIM;
            }
            if (info.canWriteZeroes()) {
                flags |= NbdProtocol.TFLAG_SEND_WRITE_ZEROES;
                if (info.canFastZero()) {
                    flags |= NbdProtocol.TFLAG_SEND_FAST_ZERO;
                }
            }
        }
        if (info.rotational()) {
            flags |= NbdProtocol.TFLAG_ROTATIONAL;
        }
        if (structured) {
            flags |= NbdProtocol.TFLAG_SEND_DF; // every READ reply is a single data chunk anyway
        }
        if (info.flushCoversAllConnections()) {
            flags |= NbdProtocol.TFLAG_CAN_MULTI_CONN;
        }
        return flags;
    }

    private void replyError(int option, int type, String message) throws IOException {
        reply(option, type, ByteBuffer.wrap(utf8(message)));
    }

    private void reply(int option, int type, ByteBuffer data) throws IOException {
        int len = data == null ? 0 : data.remaining();
        ByteBuffer head = ByteBuffer.allocate(20 + len);
        head.putLong(NbdProtocol.OPTION_REPLY_MAGIC).putInt(option).putInt(type).putInt(len);
        if (data != null) {
            head.put(data);
        }
        head.flip();
        writeFully(head);
    }

    private static String decodeName(ByteBuffer bytes) {
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(bytes).toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private ByteBuffer readFully(int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (channel.read(b) < 0) {
                throw new EOFException("client closed during the handshake");
            }
        }
        return b.flip();
    }

    private void skip(long n) throws IOException {
        ByteBuffer scratch = ByteBuffer.allocate((int) Math.min(n, 64 << 10));
        long left = n;
        while (left > 0) {
            scratch.clear().limit((int) Math.min(scratch.capacity(), left));
            int r = channel.read(scratch);
            if (r < 0) {
                throw new EOFException("client closed during the handshake");
            }
            left -= r;
        }
    }

    private void writeFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            channel.write(b);
        }
    }
}
