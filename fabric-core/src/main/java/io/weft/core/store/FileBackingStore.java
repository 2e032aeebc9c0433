package io.weft.core.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.EnumSet;
import java.util.Set;

/**
 * A regular file used as a block store through positional {@link FileChannel} IO.
 * Zeroing writes zeros from a shared read-only zero buffer (hole punching arrives with the native helpers).
 */
public final class FileBackingStore implements BackingStore {
    private static final int ZERO_CHUNK = 1 << 20;
    private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(ZERO_CHUNK).asReadOnlyBuffer();

    private final Path path;
    private final FileChannel channel;
    private final boolean readOnly;
    private volatile long size;

    private FileBackingStore(Path path, FileChannel channel, boolean readOnly, long size) {
        this.path = path;
        this.channel = channel;
        this.readOnly = readOnly;
        this.size = size;
    }

    /** Opens an existing file. */
    public static FileBackingStore open(Path path, boolean readOnly) throws IOException {
        Set<StandardOpenOption> options = readOnly
                ? EnumSet.of(StandardOpenOption.READ)
                : EnumSet.of(StandardOpenOption.READ, StandardOpenOption.WRITE);
        FileChannel ch = FileChannel.open(path, options);
        return new FileBackingStore(path, ch, readOnly, ch.size());
    }

    /** Creates a sparse file of {@code size} bytes if it does not exist, then opens it read-write. */
    public static FileBackingStore createSparse(Path path, long size) throws IOException {
        if (!Files.exists(path)) {
            Path parent = path.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            try (FileChannel ch = FileChannel.open(path, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                ch.truncate(0);
                if (size > 0) {
                    ch.write(ByteBuffer.wrap(new byte[1]), size - 1);
                }
            }
        }
        return open(path, false);
    }

    @Override
    public String path() {
        return path.toString();
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public boolean readOnly() {
        return readOnly;
    }

    @Override
    public int logicalBlockSize() {
        return 512;
    }

    @Override
    public boolean canPunchHoles() {
        return false;
    }

    private void checkRange(long offset, long length) throws IOException {
        if (offset < 0 || length < 0 || offset > size || length > size - offset) {
            throw new IOException("range [" + offset + ", +" + length + ") outside store of " + size + " bytes");
        }
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        checkRange(offset, dst.remaining());
        long pos = offset;
        while (dst.hasRemaining()) {
            int n = channel.read(dst, pos);
            if (n < 0) {
                // Past the end of a file that shrank under us: the rest reads as zeros.
                while (dst.hasRemaining()) {
                    dst.put((byte) 0);
                }
                return;
            }
            pos += n;
        }
    }

    @Override
    public void write(long offset, ByteBuffer src, boolean fua) throws IOException {
        checkWritable();
        checkRange(offset, src.remaining());
        long pos = offset;
        while (src.hasRemaining()) {
            pos += channel.write(src, pos);
        }
        if (fua) {
            channel.force(false);
        }
    }

    @Override
    public void flush() throws IOException {
        if (!readOnly) {
            channel.force(false);
        }
    }

    @Override
    public void discard(long offset, long length) throws IOException {
        checkWritable();
        checkRange(offset, length);
        // Without hole punching a discard is a no-op: NBD allows TRIM to leave the data as it was.
    }

    @Override
    public void writeZeroes(long offset, long length, boolean mayPunch, boolean fastOnly) throws IOException {
        checkWritable();
        checkRange(offset, length);
        if (fastOnly) {
            throw new UnsupportedOperationException("zeroing needs data writes on this store");
        }
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            ByteBuffer z = ZEROS.duplicate();
            z.limit((int) Math.min(ZERO_CHUNK, end - pos));
            while (z.hasRemaining()) {
                pos += channel.write(z, pos);
            }
        }
    }

    @Override
    public void resize(long newSize) throws IOException {
        checkWritable();
        if (newSize < 0) {
            throw new IOException("negative size " + newSize);
        }
        if (newSize < channel.size()) {
            channel.truncate(newSize);
        } else if (newSize > channel.size()) {
            channel.write(ByteBuffer.wrap(new byte[1]), newSize - 1);
        }
        size = newSize;
    }

    private void checkWritable() throws IOException {
        if (readOnly) {
            throw new IOException("store " + path + " is read-only");
        }
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
