package io.weft.cxl.layout;

import io.weft.cxl.map.SharedMapping;
import java.nio.ByteBuffer;
import java.util.zip.CRC32C;
import org.agrona.DirectBuffer;

/**
 * CRC32C through {@link CRC32C} (intrinsified by the JIT). Agrona's own Crc32c needs an extra
 * {@code --add-opens java.base/java.util.zip}; this needs nothing beyond the project's usual flags.
 */
public final class Checksums {
    private Checksums() {
    }

    /** Control path (allocates a view): CRC32C of {@code buffer[offset, offset + length)}. */
    public static int crc32c(DirectBuffer buffer, int offset, int length) {
        buffer.boundsCheck(offset, length);
        CRC32C crc = new CRC32C();
        if (buffer.byteArray() != null) {
            crc.update(buffer.byteArray(), (int) (buffer.addressOffset() - org.agrona.BufferUtil.ARRAY_BASE_OFFSET)
                    + offset, length);
        } else {
            ByteBuffer view = SharedMapping.wrapAddress(buffer.addressOffset() + offset, length);
            crc.update(view);
        }
        return (int) crc.getValue();
    }

    /** Hot path: a reusable calculator over one memory range. Not thread-safe: one per thread that checksums. */
    public static final class Calculator {
        private final CRC32C crc = new CRC32C();
        private final ByteBuffer view;
        private final int capacity;

        public Calculator(DirectBuffer memory) {
            if (memory.byteArray() != null) {
                throw new IllegalArgumentException("calculators work over off-heap memory");
            }
            this.capacity = memory.capacity();
            this.view = SharedMapping.wrapAddress(memory.addressOffset(), capacity);
        }

        public int compute(int offset, int length) {
            if (offset < 0 || length < 0 || offset > capacity - length) {
                throw new IndexOutOfBoundsException("crc range [" + offset + ",+" + length + ") outside " + capacity);
            }
            view.clear();
            view.position(offset).limit(offset + length);
            crc.reset();
            crc.update(view);
            return (int) crc.getValue();
        }
    }
}
