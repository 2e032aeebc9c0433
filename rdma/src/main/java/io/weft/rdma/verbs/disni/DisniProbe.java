package io.weft.rdma.verbs.disni;

import com.ibm.disni.verbs.RdmaEventChannel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * Finds out once per JVM whether DiSNI can run: libdisni must load (its first use throws
 * {@link UnsatisfiedLinkError}, every later one {@link NoClassDefFoundError}, so the answer is cached) and an RDMA
 * device must exist ({@code rdma_create_event_channel} fails with an {@link IOException} without one).
 */
public final class DisniProbe {
    /** Where the kernel lists RDMA devices (rxe0 for Soft-RoCE, mlx5_0 for a ConnectX, ...). */
    static final Path SYSFS_DEVICES = Path.of("/sys/class/infiniband");

    /** Outcome: usable or not, and a sentence saying why. */
    public record Result(boolean available, String reason) {
    }

    private static Result cached;

    private DisniProbe() {
    }

    public static synchronized Result probe() {
        if (cached == null) {
            cached = attempt();
        }
        return cached;
    }

    /** One uncached attempt (tests call it repeatedly to see both linkage errors handled). */
    public static Result attempt() {
        try {
            RdmaEventChannel channel = RdmaEventChannel.createEventChannel();
            channel.destroyEventChannel();
        } catch (Throwable t) {
            return new Result(false, explain(t));
        }
        String devices = listDevices(SYSFS_DEVICES);
        if (devices.isEmpty()) {
            return new Result(false, "libdisni loaded but " + SYSFS_DEVICES + " lists no RDMA device (for Soft-RoCE:"
                    + " modprobe rdma_rxe; rdma link add rxe0 type rxe netdev eth0)");
        }
        return new Result(true, "libdisni loaded, RDMA devices: " + devices);
    }

    /** Turns what DiSNI threw into one clear sentence. */
    public static String explain(Throwable t) {
        if (t instanceof UnsatisfiedLinkError) {
            return "libdisni is not installed (UnsatisfiedLinkError: " + t.getMessage() + "); build DiSNI's native"
                    + " library and put libdisni.so on java.library.path (-Djava.library.path=...)";
        }
        if (t instanceof NoClassDefFoundError) {
            return "libdisni is not installed (DiSNI's native binding failed to load earlier in this JVM: "
                    + t.getMessage() + ")";
        }
        if (t instanceof IOException) {
            return "libdisni loaded but no RDMA device is usable (rdma_create_event_channel failed: "
                    + t.getMessage() + "); check ibv_devices / rdma link, or add Soft-RoCE with"
                    + " 'rdma link add rxe0 type rxe netdev eth0'";
        }
        if (t instanceof LinkageError) {
            return "DiSNI cannot link against libdisni/libibverbs here (" + t + ")";
        }
        return "DiSNI failed to start (" + t + ")";
    }

    static String listDevices(Path sysfs) {
        if (!Files.isDirectory(sysfs)) {
            return "";
        }
        try (Stream<Path> s = Files.list(sysfs)) {
            return String.join(", ", s.map(p -> p.getFileName().toString()).sorted().toList());
        } catch (IOException e) {
            return "";
        }
    }
}
