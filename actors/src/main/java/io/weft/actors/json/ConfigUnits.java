package io.weft.actors.json;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import java.time.Duration;

/**
 * Sizes ({@code "64MiB"}) and durations ({@code "500ms"}) in Typesafe Config's syntax, read from a user's text
 * through the Config API: the text becomes one string value ({@link ConfigValueFactory}), never HOCON source, so
 * quotes, braces, escapes or {@code ${...}} in it are just characters of a value that is then not a size.
 */
public final class ConfigUnits {
    private static final String KEY = "value";

    private ConfigUnits() {
    }

    private static Config holding(String text) {
        return ConfigFactory.empty().withValue(KEY, ConfigValueFactory.fromAnyRef(text));
    }

    /** @throws IllegalArgumentException {@code "is not a size: TEXT"} */
    public static long bytes(String text) {
        try {
            return holding(text).getBytes(KEY);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("is not a size: " + text);
        }
    }

    /** @throws IllegalArgumentException {@code "is not a duration: TEXT"} */
    public static Duration duration(String text) {
        try {
            return holding(text).getDuration(KEY);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("is not a duration: " + text);
        }
    }
}
