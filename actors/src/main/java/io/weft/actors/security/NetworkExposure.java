package io.weft.actors.security;

import com.typesafe.config.Config;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The start-up rule "TLS where a wire leaves the host": a node whose cluster (Artery), management HTTP or RDMA
 * listener is bound to an address that is not loopback, while that listener has no TLS, refuses to start unless
 * {@code weft.insecure} ({@code weft node --insecure}). Loopback (127.0.0.0/8, ::1, a name that resolves only to
 * loopback such as {@code localhost}) needs nothing, so single-host use and the test suite need no certificates.
 *
 * <p>Management HTTP has no TLS of its own: a non-loopback management address always needs {@code weft.insecure}
 * (put a TLS proxy in front, or reach it through an SSH tunnel). An NBD TCP listener ({@code weft.nbd.listen}, a
 * node-app key) off loopback needs {@code weft.nbd.tls = require}: with {@code on} plaintext clients are still served.
 */
public final class NetworkExposure {
    public static final String INSECURE = "weft.insecure";
    private static final Logger LOG = LoggerFactory.getLogger(NetworkExposure.class);
    private static final Pattern IP_LITERAL = Pattern.compile("[0-9.]+|[0-9a-fA-F:.%]*:[0-9a-fA-F:.%]*");

    private NetworkExposure() {
    }

    /**
     * Checks {@code config} (with reference.conf applied).
     *
     * @throws IllegalArgumentException {@code "<key>: ..."} naming the first exposed listener's setting
     */
    public static void check(Config config) {
        List<String> exposed = new ArrayList<>();
        boolean insecure = config.hasPath(INSECURE) && config.getBoolean(INSECURE);
        String cluster = config.getString("weft.cluster.hostname");
        if (!isLoopback(cluster) && !NodeTls.clusterTls(config)) {
            exposed.add(refusal("weft.cluster.hostname", cluster, "the cluster transport (Artery) has no TLS, so any"
                    + " process that reaches it can join the cluster, claim a node's name and read the traffic."
                    + " Set weft.tls.certificates (made by `weft certs init`)"));
        }
        if (config.getBoolean("weft.management.http.enabled")) {
            String http = config.getString("weft.management.http.hostname");
            if (!isLoopback(http)) {
                exposed.add(refusal("weft.management.http.hostname", http, "management HTTP has no TLS: its token and"
                        + " answers would cross the network in clear. Keep it on loopback (reach it over an SSH"
                        + " tunnel or a TLS proxy)"));
            }
        }
        if (servesRdma(config) && !NodeTls.rdmaTls(config)) {
            List<String> listen = config.getStringList("weft.rdma.listen");
            List<String> hosts = new ArrayList<>();
            if (listen.isEmpty()) {
                hosts.add(cluster);
            } else {
                for (String hostPort : listen) {
                    hosts.add(host(hostPort));
                }
            }
            for (String host : hosts) {
                if (!isLoopback(host)) {
                    exposed.add(refusal("weft.rdma.listen", host, "the RDMA data path has no TLS (weft.rdma.tls"
                            + (listen.isEmpty() ? "; with weft.rdma.listen empty the server binds"
                                    + " weft.cluster.hostname" : "") + ")"));
                    break;
                }
            }
        }
        if (config.hasPath("weft.nbd.listen")) {
            String nbd = config.getString("weft.nbd.listen").strip();
            String mode = config.hasPath("weft.nbd.tls") ? config.getString("weft.nbd.tls").strip() : "off";
            if (!nbd.isEmpty() && !nbd.equalsIgnoreCase("off") && !isLoopback(host(nbd))
                    && !mode.equalsIgnoreCase("require")) {
                exposed.add(refusal("weft.nbd.listen", host(nbd), "NBD has no authentication and weft.nbd.tls is "
                        + mode + " (plaintext clients are served). Set weft.nbd.tls = require with certificates"));
            }
        }
        if (exposed.isEmpty()) {
            return;
        }
        if (insecure) {
            for (String e : exposed) {
                LOG.warn("weft.insecure = true: starting anyway although {}", e);
            }
            return;
        }
        throw new IllegalArgumentException(exposed.get(0));
    }

    private static String refusal(String key, String address, String why) {
        return key + ": " + address + " is not a loopback address and " + why + ", or bind to loopback, or pass"
                + " --insecure (" + INSECURE + " = true) to start without TLS (docs/security.md, \"Exposure\")";
    }

    /** Storage nodes with the rdma transport run an RDMA server (started with the first mapping served). */
    private static boolean servesRdma(Config config) {
        List<String> enabled = config.getStringList("weft.transport.enabled");
        return config.getStringList("weft.node.roles").contains("storage")
                && (enabled.contains("rdma") || enabled.contains("auto"));
    }

    /** The host of "host:port" or "[v6]:port". */
    static String host(String hostPort) {
        String s = hostPort.strip();
        if (s.startsWith("[")) {
            int end = s.indexOf(']');
            return end > 0 ? s.substring(1, end) : s;
        }
        int colon = s.lastIndexOf(':');
        return colon > 0 && s.indexOf(':') == colon ? s.substring(0, colon) : s;
    }

    /**
     * 127.0.0.0/8, ::1, or a name whose every address is loopback. A wildcard (0.0.0.0, ::) or a name that does not
     * resolve is not.
     */
    public static boolean isLoopback(String host) {
        String h = host.strip();
        if (h.startsWith("[") && h.endsWith("]")) {
            h = h.substring(1, h.length() - 1);
        }
        if (h.isEmpty()) {
            return false;
        }
        try {
            if (IP_LITERAL.matcher(h).matches()) {
                return InetAddress.getByName(h).isLoopbackAddress();
            }
            InetAddress[] all = InetAddress.getAllByName(h);
            for (InetAddress a : all) {
                if (!a.isLoopbackAddress()) {
                    return false;
                }
            }
            return all.length > 0;
        } catch (UnknownHostException e) {
            return false;
        }
    }
}
