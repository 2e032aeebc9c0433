package io.weft.testkit;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Builds a test's node configuration through the Config API ({@link ConfigFactory#parseMap}), one setting at a
 * time, instead of pasting values into HOCON source: a path with a quote, a backslash or a {@code $} in it stays
 * the value it is, and a typo in a key is a key, not a parse error somewhere else.
 *
 * <pre>{@code
 * Config c = TestConfig.of("weft.rdma.tls", "on").with("weft.tls.certificates", certs).overReference();
 * }</pre>
 *
 * Values are what {@code parseMap} takes: strings (sizes and durations as written, {@code "1MiB"}, {@code "2s"}),
 * numbers, booleans, lists; a {@link Path} becomes its string.
 */
public final class TestConfig {
    private final Map<String, Object> settings = new LinkedHashMap<>();

    private TestConfig() {
    }

    /** No settings yet. */
    public static TestConfig empty() {
        return new TestConfig();
    }

    /** One setting: {@code path} (a dotted HOCON path) is {@code value}. */
    public static TestConfig of(String path, Object value) {
        return new TestConfig().with(path, value);
    }

    /** Adds (or replaces) the setting {@code path}. */
    public TestConfig with(String path, Object value) {
        settings.put(path, value instanceof Path p ? p.toString() : value);
        return this;
    }

    /** The settings alone. */
    public Config build() {
        return ConfigFactory.parseMap(settings, "test settings");
    }

    /** The settings over the reference configuration ({@code reference.conf} of the classpath), resolved. */
    public Config overReference() {
        return build().withFallback(ConfigFactory.defaultReference()).resolve();
    }
}
