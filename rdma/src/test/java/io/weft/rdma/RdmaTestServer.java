package io.weft.rdma;

import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import io.weft.rdma.server.RdmaServer;
import io.weft.rdma.server.RdmaServerConfig;
import io.weft.rdma.verbs.VerbsProvider;
import io.weft.rdma.verbs.VerbsProviders;
import io.weft.testkit.CompletionHoldingBlockDevice;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Storage side for multi-JVM tests and the benchmark: serves one file as device {@code vol0}.
 *
 * <pre>
 * args: FILE SIZE_BYTES HOST:PORT[,HOST:PORT...] [AGENTS]
 * stdout: "READY host:port host:port"
 * stdin:  "drop host:port" -> "DROPPED n" (closes every connection accepted there, like a link failure)
 *         "hold"           -> "HELD" (requests still execute, their answers are kept back)
 *         "held"           -> "HOLDING n" (answers kept back right now)
 *         "release"        -> "RELEASED n" (the kept answers go out, from this thread)
 *         "sessions"       -> "SESSIONS ..."
 * </pre>
 */
public final class RdmaTestServer {
    private RdmaTestServer() {
    }

    public static void main(String[] args) throws Exception {
        Path file = Path.of(args[0]);
        long size = Long.parseLong(args[1]);
        List<InetSocketAddress> listen = new ArrayList<>();
        for (String hp : args[2].split(",")) {
            listen.add(parse(hp));
        }
        int agents = args.length > 3 ? Integer.parseInt(args[3]) : 1;
        VerbsProvider provider = VerbsProviders.open(VerbsProviders.Mode.SOFTWARE, RdmaBench.benchTls()).provider();
        CompletionHoldingBlockDevice device =
                new CompletionHoldingBlockDevice(new StoreBlockDevice(FileBackingStore.createSparse(file, size)));
        RdmaServer server = RdmaServer.start(provider, RdmaServerConfig.DEFAULTS.withAgents(agents),
                TestGrants.served("vol0", device), listen);
        StringBuilder ready = new StringBuilder("READY");
        for (InetSocketAddress a : server.listenAddresses()) {
            ready.append(' ').append(a.getAddress().getHostAddress()).append(':').append(a.getPort());
        }
        System.out.println(ready);
        System.out.flush();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.startsWith("drop ")) {
                int n = server.dropConnections(parse(line.substring(5).trim()));
                System.out.println("DROPPED " + n);
            } else if (line.equals("hold")) {
                device.hold();
                System.out.println("HELD");
            } else if (line.equals("held")) {
                System.out.println("HOLDING " + device.heldCount());
            } else if (line.equals("release")) {
                System.out.println("RELEASED " + device.release());
            } else if (line.equals("sessions")) {
                System.out.println("SESSIONS " + server.sessions());
            } else if (line.equals("exit")) {
                break;
            }
            System.out.flush();
        }
        server.close();
        device.close();
        System.exit(0);
    }

    static InetSocketAddress parse(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        return new InetSocketAddress(hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
    }
}
