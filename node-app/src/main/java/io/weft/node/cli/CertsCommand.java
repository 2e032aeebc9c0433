package io.weft.node.cli;

import io.weft.core.tls.CertificateAuthority;
import io.weft.core.tls.TlsLayout;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code weft certs}: certificates for a test or small cluster (docs/security.md, "Certificates"). The CA and the
 * layout are {@link CertificateAuthority}'s; this command only lays them out per node.
 */
@Command(name = "certs", mixinStandardHelpOptions = true, subcommands = {CertsCommand.Init.class},
        description = "Makes a cluster CA and per-node certificates (Artery TLS, NBD TLS, soft RDMA TLS).")
public final class CertsCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** {@code weft certs init DIR --nodes a,b,c [--hosts NAME|IP ...]}. */
    @Command(name = "init", mixinStandardHelpOptions = true,
            description = {"Writes DIR/ca-cert.pem and DIR/ca-key.pem (the CA; keep ca-key.pem with whoever issues",
                "certificates) and per node DIR/NODE/ with ca-cert.pem, server-cert.pem, server-key.pem,",
                "client-cert.pem, client-key.pem (the layout nbdkit, qemu and libnbd read), keystore.p12,",
                "truststore.p12 and keystore.password. With one node, DIR itself holds that node's layout too.",
                "Private keys, keystore and password are mode 0600. A DIR that has a CA already is reused:",
                "the new nodes join the same cluster. Give a node its DIR/NODE as weft.tls.certificates."})
    public static final class Init implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Parameters(index = "0", paramLabel = "DIR", description = "Directory to write into (created).")
        Path dir;

        @Option(names = "--nodes", paramLabel = "NAME", split = ",", required = true,
                description = "Node names (weft.node.name), comma separated: one directory and certificate each.")
        List<String> nodes;

        @Option(names = "--hosts", paramLabel = "NAME|IP", split = ",",
                description = "Extra names or addresses in every server certificate (repeatable or comma "
                        + "separated), besides 127.0.0.1, localhost and the node's name.")
        List<String> hosts = new ArrayList<>();

        @Override
        public Integer call() throws IOException {
            PrintWriter out = spec.commandLine().getOut();
            PrintWriter err = spec.commandLine().getErr();
            LinkedHashSet<String> names = new LinkedHashSet<>();
            for (String node : nodes) {
                String n = node.trim();
                if (n.isEmpty() || n.contains("/") || n.startsWith(".")) {
                    throw new CommandLine.ParameterException(spec.commandLine(),
                            "--nodes: not usable as a node and directory name: \"" + node + "\"");
                }
                if (!names.add(n)) {
                    throw new CommandLine.ParameterException(spec.commandLine(), "--nodes: " + n + " given twice");
                }
            }
            for (String n : names) {
                if (Files.exists(dir.resolve(n))) {
                    err.println("weft certs init: " + dir.resolve(n) + " exists already; remove it to issue new "
                            + "certificates for " + n);
                    return WeftMain.EXIT_FAILURE;
                }
            }
            CertificateAuthority ca;
            if (Files.exists(dir.resolve(TlsLayout.CA_KEY))) {
                ca = CertificateAuthority.load(dir);
                out.println("Using the CA in " + dir.resolve(TlsLayout.CA_CERT));
            } else {
                ca = CertificateAuthority.create(dir.toAbsolutePath().normalize().getFileName() == null ? "weft"
                        : "weft " + dir.toAbsolutePath().normalize().getFileName());
                ca.writeAuthority(dir);
                out.println("Wrote the CA: " + dir.resolve(TlsLayout.CA_CERT) + " and "
                        + dir.resolve(TlsLayout.CA_KEY) + " (keep the key private)");
            }
            try {
                for (String n : names) {
                    ca.writeNodeLayout(dir.resolve(n), n, hosts);
                    out.println("Wrote " + dir.resolve(n) + "/ for node " + n
                            + " (set weft.tls.certificates = " + dir.resolve(n).toAbsolutePath().normalize() + ")");
                }
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--hosts: " + e.getMessage());
            }
            if (names.size() == 1) {
                copyLayout(dir.resolve(names.iterator().next()), dir);
                out.println("Wrote the layout of " + names.iterator().next() + " into " + dir + "/ too");
            }
            return 0;
        }

        private static void copyLayout(Path from, Path to) throws IOException {
            try (DirectoryStream<Path> files = Files.newDirectoryStream(from)) {
                for (Path file : files) {
                    // COPY_ATTRIBUTES keeps the 0600 of keys and password.
                    Files.copy(file, to.resolve(file.getFileName()), StandardCopyOption.REPLACE_EXISTING,
                            StandardCopyOption.COPY_ATTRIBUTES);
                }
            }
        }
    }
}
