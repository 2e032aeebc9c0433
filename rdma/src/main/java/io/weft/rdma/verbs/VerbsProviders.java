package io.weft.rdma.verbs;

import io.weft.rdma.verbs.disni.DisniProbe;
import io.weft.rdma.verbs.disni.DisniProvider;
import io.weft.rdma.verbs.soft.SoftwareProvider;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicBoolean;
import javax.net.ssl.SSLContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Chooses the verbs provider from configuration ({@code weft.rdma.provider = disni | software | auto}) and logs the
 * choice with its reason once per JVM.
 */
public final class VerbsProviders {
    private static final Logger LOG = LoggerFactory.getLogger(VerbsProviders.class);
    private static final AtomicBoolean LOGGED = new AtomicBoolean();

    /** The configured provider. */
    public enum Mode {
        /** Real verbs through DiSNI; fails clearly when libdisni or an RDMA device is missing. */
        DISNI,
        /** The TCP provider, always available. */
        SOFTWARE,
        /** DiSNI when libdisni loads and a device exists, else software. */
        AUTO;

        public static Mode parse(String value) {
            try {
                return valueOf(value.trim().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("weft.rdma.provider must be disni, software or auto, not '"
                        + value + "'");
            }
        }
    }

    /** The provider plus why it was chosen. */
    public record Choice(VerbsProvider provider, String reason) {
    }

    private VerbsProviders() {
    }

    /**
     * @throws RdmaUnavailableException for {@link Mode#DISNI} when DiSNI cannot run here (the message names the
     *                                  missing piece)
     */
    public static Choice open(Mode mode) {
        return open(mode, null);
    }

    /**
     * As {@link #open(Mode)}; with {@code tls} non-null the software provider runs every connection over TLS with
     * mutual authentication ({@code weft.rdma.tls}). DiSNI ignores it: RDMA hardware does not carry TCP.
     */
    public static Choice open(Mode mode, SSLContext tls) {
        Choice choice;
        String secured = tls != null ? ", TLS with mutual authentication" : "";
        switch (mode) {
            case SOFTWARE:
                choice = new Choice(new SoftwareProvider(tls), "configured: software" + secured);
                break;
            case DISNI: {
                DisniProbe.Result probe = DisniProbe.probe();
                if (!probe.available()) {
                    throw new RdmaUnavailableException("RDMA provider 'disni' configured but unavailable: "
                            + probe.reason());
                }
                choice = new Choice(new DisniProvider(), "configured: disni (" + probe.reason() + ")");
                break;
            }
            case AUTO:
            default: {
                DisniProbe.Result probe = DisniProbe.probe();
                choice = probe.available()
                        ? new Choice(new DisniProvider(), "auto: " + probe.reason())
                        : new Choice(new SoftwareProvider(tls), "auto: DiSNI unavailable (" + probe.reason()
                                + "), using the software provider over TCP" + secured);
                break;
            }
        }
        if (tls != null && choice.provider() instanceof DisniProvider) {
            LOG.warn("weft.rdma.tls = on does not apply to the DiSNI provider (RDMA hardware, not TCP)");
        }
        if (LOGGED.compareAndSet(false, true)) {
            LOG.info("RDMA verbs provider: {} — {}", choice.provider().name(), choice.reason());
        }
        return choice;
    }
}
