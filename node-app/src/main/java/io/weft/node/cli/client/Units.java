package io.weft.node.cli.client;

import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import java.time.Duration;

/** Sizes ("64MiB", "4096") and durations ("2s", "500ms", "1500") as the node reads them (Typesafe Config syntax). */
final class Units {
    private Units() {
    }

    /** Bytes of {@code text}; a plain number is bytes. */
    static long bytes(String option, String text) {
        try {
            long bytes = ConfigFactory.empty().withValue("v", ConfigValueFactory.fromAnyRef(text)).getBytes("v");
            if (bytes <= 0) {
                throw new IllegalArgumentException(option + " must be positive: " + text);
            }
            return bytes;
        } catch (ConfigException e) {
            throw new IllegalArgumentException(option + ": expected a size such as 64MiB or 4096, got '" + text + "'");
        }
    }

    /** Milliseconds of {@code text}; a plain number is milliseconds. */
    static long millis(String option, String text) {
        try {
            Duration d = ConfigFactory.empty().withValue("v", ConfigValueFactory.fromAnyRef(text)).getDuration("v");
            if (d.isNegative()) {
                throw new IllegalArgumentException(option + " must not be negative: " + text);
            }
            return d.toMillis();
        } catch (ConfigException e) {
            throw new IllegalArgumentException(option + ": expected a duration such as 2s, 500ms or 1500, got '"
                    + text + "'");
        }
    }
}
