package io.weft.actors.drill.harness;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * A {@link BlockDevice} over a remote NBD export, for a drill driven from outside the node that serves the export (the
 * client-kill drill: the driver runs its verifying workload through the client node's NBD export, then kills that
 * node). It survives the export going away: requests in flight when the connection drops complete with
 * {@link IoStatus#EIO} (in doubt: they may or may not have reached the storage), and requests submitted while there is
 * no connection are held until {@link #connect} opens a new one (or {@link #close} fails them), so the workload
 * simply stalls while the node is down.
 *
 * <p>Protocol (proto.md): fixed newstyle handshake, {@code NBD_OPT_GO} for the export, simple replies only.
 * <pre>
 * request  0: magic 0x25609513 u32 | 4: flags u16 | 6: type u16 | 8: handle u64 | 16: offset u64 | 24: length u32
 * reply    0: magic 0x67446698 u32 | 4: error u32 | 8: handle u64 (then the data of a READ)
 * </pre>
 * The handle is the request's slot index. Big-endian, as NBD is.
 *
 * <p>Threads and ownership: submitters write requests (and WRITE payloads, from the caller's buffer) under this
 * object's lock; one reader thread per connection reads replies and READ data into the caller's buffer, then completes
 * the request. A request belongs to this device from submit until its completion runs: when a connection dies its
 * reader thread, which is the only one that could still write into a READ buffer, fails the in-flight requests itself
 * after it has stopped reading. A drill tool, not a data path: one lock, an allocation per connection.
 */
public final class NbdDriveDevice implements BlockDevice {
    private static final long NBDMAGIC = 0x4e42444d41474943L;
    private static final long IHAVEOPT = 0x49484156454F5054L;
    private static final long OPTION_REPLY_MAGIC = 0x3e889045565a9L;
    private static final int FLAG_FIXED_NEWSTYLE = 1;
    private static final int FLAG_NO_ZEROES = 1 << 1;
    private static final int OPT_GO = 7;
    private static final int REP_ACK = 1;
    private static final int REP_INFO = 3;
    private static final int INFO_EXPORT = 0;
    private static final int TFLAG_READ_ONLY = 1 << 1;
    private static final int REQUEST_MAGIC = 0x25609513;
    private static final int SIMPLE_REPLY_MAGIC = 0x67446698;
    private static final int CMD_READ = 0;
    private static final int CMD_WRITE = 1;
    private static final int CMD_DISC = 2;
    private static final int CMD_FLUSH = 3;
    /** The largest request this device sends (NBD servers take up to 32 MiB; Weft's max IO is smaller). */
    private static final int MAX_IO = 1 << 20;

    private final String exportName;
    private final Slot[] slots;
    private final Deque<Slot> held = new ArrayDeque<>();
    private volatile DeviceInfo info;
    private SocketChannel channel; // guarded by this
    private long connectionGeneration; // guarded by this
    private boolean closed; // guarded by this
    private final ByteBuffer header = ByteBuffer.allocate(28).order(ByteOrder.BIG_ENDIAN); // guarded by this

    /** One request: handle = index; owned by this device while {@code busy}. */
    private static final class Slot {
        final int index;
        boolean busy;
        boolean sent;
        long generation;
        IoOp op;
        long offset;
        int length;
        ByteBuffer buffer;
        long tag;
        IoCompletion completion;

        Slot(int index) {
            this.index = index;
        }
    }

    /**
     * @param exportName the export to open on every {@link #connect}
     * @param maxInFlight the most requests the caller keeps in flight (a submit beyond it fails with EINVAL)
     */
    public NbdDriveDevice(String exportName, int maxInFlight) {
        this.exportName = exportName;
        this.slots = new Slot[maxInFlight];
        for (int i = 0; i < maxInFlight; i++) {
            slots[i] = new Slot(i);
        }
    }

    /**
     * Opens a connection to {@code address} and the export, then sends the requests held meanwhile. The export's size
     * must not change between connections.
     *
     * @throws IOException when the server cannot be reached or refuses the export
     */
    public void connect(InetSocketAddress address) throws IOException {
        SocketChannel ch = SocketChannel.open(address);
        try {
            ch.socket().setTcpNoDelay(true);
            DeviceInfo opened = handshake(ch);
            DeviceInfo before = info;
            if (before != null && before.size() != opened.size()) {
                throw new IOException("export " + exportName + " is " + opened.size() + " bytes now, "
                        + before.size() + " before");
            }
            info = opened;
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
        long generation;
        synchronized (this) {
            if (closed) {
                ch.close();
                throw new IOException("device closed");
            }
            if (channel != null) {
                ch.close();
                throw new IOException("already connected");
            }
            channel = ch;
            generation = ++connectionGeneration;
            Thread reader = new Thread(() -> readReplies(ch, generation), "weft-nbd-drive-" + exportName);
            reader.setDaemon(true);
            reader.start();
            while (!held.isEmpty()) {
                send(held.pollFirst());
            }
        }
    }

    /** Whether a connection is open now. */
    public synchronized boolean connected() {
        return channel != null;
    }

    private DeviceInfo handshake(SocketChannel ch) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(18).order(ByteOrder.BIG_ENDIAN);
        readFully(ch, b);
        if (b.getLong(0) != NBDMAGIC || b.getLong(8) != IHAVEOPT) {
            throw new IOException("not a newstyle NBD server");
        }
        int serverFlags = b.getShort(16) & 0xFFFF;
        if ((serverFlags & FLAG_FIXED_NEWSTYLE) == 0) {
            throw new IOException("the NBD server does not speak fixed newstyle");
        }
        int clientFlags = FLAG_FIXED_NEWSTYLE | (serverFlags & FLAG_NO_ZEROES);
        byte[] name = exportName.getBytes(StandardCharsets.UTF_8);
        ByteBuffer go = ByteBuffer.allocate(4 + 8 + 4 + 4 + 4 + name.length + 2).order(ByteOrder.BIG_ENDIAN);
        go.putInt(clientFlags).putLong(IHAVEOPT).putInt(OPT_GO).putInt(4 + name.length + 2).putInt(name.length)
                .put(name).putShort((short) 0).flip();
        writeFully(ch, go);
        long size = -1;
        boolean readOnly = false;
        ByteBuffer head = ByteBuffer.allocate(20).order(ByteOrder.BIG_ENDIAN);
        while (true) {
            head.clear();
            readFully(ch, head);
            if (head.getLong(0) != OPTION_REPLY_MAGIC || head.getInt(8) != OPT_GO) {
                throw new IOException("bad option reply");
            }
            int type = head.getInt(12);
            int length = head.getInt(16);
            if (length < 0 || length > 64 << 10) {
                throw new IOException("option reply of " + length + " bytes");
            }
            ByteBuffer data = ByteBuffer.allocate(length).order(ByteOrder.BIG_ENDIAN);
            readFully(ch, data);
            if (type == REP_ACK) {
                break;
            }
            if (type < 0) {
                throw new IOException("server refused export '" + exportName + "': "
                        + new String(data.array(), StandardCharsets.UTF_8));
            }
            if (type == REP_INFO && length >= 12 && (data.getShort(0) & 0xFFFF) == INFO_EXPORT) {
                size = data.getLong(2);
                readOnly = (data.getShort(10) & TFLAG_READ_ONLY) != 0;
            }
        }
        if (size < 0) {
            throw new IOException("server sent no size for export '" + exportName + "'");
        }
        return new DeviceInfo(size, 4096, 4096, MAX_IO, readOnly, true, false, false, false, false, false, false);
    }

    @Override
    public DeviceInfo info() {
        DeviceInfo i = info;
        if (i == null) {
            throw new IllegalStateException("not connected yet");
        }
        return i;
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        int refused = IoStatus.OK;
        synchronized (this) {
            if (closed) {
                refused = IoStatus.ESHUTDOWN;
            } else if ((op != IoOp.READ && op != IoOp.WRITE && op != IoOp.FLUSH) || length > MAX_IO) {
                refused = IoStatus.EINVAL;
            } else {
                Slot s = free();
                if (s == null) {
                    refused = IoStatus.EINVAL;
                } else {
                    s.busy = true;
                    s.op = op;
                    s.offset = offset;
                    s.length = length;
                    s.buffer = buffer;
                    s.tag = tag;
                    s.completion = completion;
                    if (channel == null) {
                        held.addLast(s);
                    } else {
                        send(s);
                    }
                }
            }
        }
        if (refused != IoStatus.OK) {
            completion.onComplete(tag, refused);
        }
    }

    private Slot free() {
        for (Slot s : slots) {
            if (!s.busy) {
                return s;
            }
        }
        return null;
    }

    /** Writes one request on the current channel; a failed write leaves it to the reader to fail. */
    private void send(Slot s) {
        s.sent = true;
        s.generation = connectionGeneration;
        int type = s.op == IoOp.READ ? CMD_READ : s.op == IoOp.WRITE ? CMD_WRITE : CMD_FLUSH;
        header.clear();
        header.putInt(REQUEST_MAGIC).putShort((short) 0).putShort((short) type).putLong(s.index)
                .putLong(s.op == IoOp.FLUSH ? 0 : s.offset).putInt(s.op == IoOp.FLUSH ? 0 : s.length).flip();
        try {
            writeFully(channel, header);
            if (s.op == IoOp.WRITE) {
                ByteBuffer payload = s.buffer.duplicate();
                payload.limit(payload.position() + s.length);
                writeFully(channel, payload);
            }
        } catch (IOException e) {
            // The connection is dying: closing it wakes the reader, which fails every request sent on it.
            closeQuietly(channel);
        }
    }

    private void readReplies(SocketChannel ch, long generation) {
        ByteBuffer reply = ByteBuffer.allocate(16).order(ByteOrder.BIG_ENDIAN);
        String why = "connection closed";
        try {
            while (true) {
                reply.clear();
                readFully(ch, reply);
                if (reply.getInt(0) != SIMPLE_REPLY_MAGIC) {
                    throw new IOException("bad reply magic " + Integer.toHexString(reply.getInt(0)));
                }
                int error = reply.getInt(4);
                long handle = reply.getLong(8);
                Slot s;
                synchronized (this) {
                    s = handle >= 0 && handle < slots.length ? slots[(int) handle] : null;
                    if (s == null || !s.busy || !s.sent || s.generation != generation) {
                        throw new IOException("reply for unknown handle " + handle);
                    }
                }
                // Only this thread touches the slot's buffer until the completion below.
                if (error == 0 && s.op == IoOp.READ) {
                    // As a store does, the data lands at the buffer's position, which moves past it.
                    ByteBuffer into = s.buffer;
                    into.limit(into.position() + s.length);
                    readFully(ch, into);
                }
                complete(s, error == 0 ? IoStatus.OK : error);
            }
        } catch (IOException | RuntimeException e) {
            why = e.toString();
        }
        closeQuietly(ch);
        // Nothing reads from this connection any more: fail what was sent on it (in doubt), keep the rest held.
        java.util.List<Slot> failed = new java.util.ArrayList<>();
        synchronized (this) {
            if (channel == ch) {
                channel = null;
            }
            for (Slot s : slots) {
                if (s.busy && s.sent && s.generation == generation) {
                    failed.add(s);
                }
            }
        }
        for (Slot s : failed) {
            complete(s, IoStatus.EIO);
        }
    }

    private void complete(Slot s, int status) {
        IoCompletion c;
        long tag;
        synchronized (this) {
            c = s.completion;
            tag = s.tag;
            s.completion = null;
            s.buffer = null;
            s.sent = false;
            s.busy = false;
        }
        c.onComplete(tag, status);
    }

    /** Drops the connection (as a dead server would): requests in flight on it fail with EIO, new ones are held. */
    public void disconnect() {
        synchronized (this) {
            closeQuietly(channel);
        }
    }

    /** Closes the connection; held requests complete with {@link IoStatus#ESHUTDOWN}, in-flight ones with EIO. */
    @Override
    public void close() {
        java.util.List<Slot> heldNow;
        synchronized (this) {
            closed = true;
            if (channel != null) {
                try {
                    header.clear();
                    header.putInt(REQUEST_MAGIC).putShort((short) 0).putShort((short) CMD_DISC).putLong(0)
                            .putLong(0).putInt(0).flip();
                    writeFully(channel, header);
                } catch (IOException ignored) {
                    // closing anyway
                }
                closeQuietly(channel);
            }
            heldNow = new java.util.ArrayList<>(held);
            held.clear();
        }
        for (Slot s : heldNow) {
            complete(s, IoStatus.ESHUTDOWN);
        }
    }

    private static void readFully(SocketChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                throw new EOFException("connection closed by the server");
            }
        }
    }

    private static void writeFully(SocketChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    private static void closeQuietly(SocketChannel ch) {
        if (ch != null) {
            try {
                ch.close();
            } catch (IOException ignored) {
                // nothing left to do
            }
        }
    }

    @Override
    public String toString() {
        return "nbd export " + exportName;
    }
}
