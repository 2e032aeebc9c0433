package io.weft.node.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigParseOptions;
import com.typesafe.config.ConfigValue;
import com.typesafe.config.ConfigValueType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * Builds a node's configuration from its layers and turns it into validated {@link NodeSettings}.
 *
 * <p>Precedence, highest first: command-line options ({@code --nbd-listen} ...), {@code -Dweft.KEY=VALUE} given to
 * {@code weft node}, JVM system properties, the {@code --config} file, every {@code reference.conf} on the class
 * path. Anything wrong is an {@link InvalidSettingException} naming the key, including keys under {@code weft} that
 * no reference.conf defines (a typo must not be silently ignored).
 */
public final class SettingsLoader {
    private static final Pattern VOLUME_NAME = Pattern.compile("[A-Za-z0-9._-]{1,255}");
    private static final Set<String> VOLUME_KEYS =
            Set.of("name", "path", "size", "read-only", "description");
    private static final String OFF = "off";
    private static final long SIZE_ALIGNMENT = 4096;

    private SettingsLoader() {
    }

    /**
     * Layers the configuration.
     *
     * @param configFile   the {@code --config} file, if any
     * @param dashD        {@code -D} pairs given to the command (keys like {@code weft.nbd.listen})
     * @param cliOverrides settings derived from dedicated options (same key form)
     */
    public static Config load(Optional<Path> configFile, Map<String, String> dashD, Map<String, ?> cliOverrides) {
        Config reference = ConfigFactory.defaultReferenceUnresolved();
        Config file = ConfigFactory.empty();
        if (configFile.isPresent()) {
            Path path = configFile.get();
            if (!Files.isRegularFile(path)) {
                throw new InvalidSettingException("--config", "no such file: " + path);
            }
            try {
                file = ConfigFactory.parseFile(path.toFile(), ConfigParseOptions.defaults().setAllowMissing(false));
            } catch (ConfigException e) {
                throw new InvalidSettingException("--config", e.getMessage());
            }
        }
        try {
            return ConfigFactory.parseMap(cliOverrides, "command-line options")
                    .withFallback(ConfigFactory.parseMap(dashD, "-D options"))
                    .withFallback(ConfigFactory.systemProperties())
                    .withFallback(file)
                    .withFallback(reference)
                    .resolve();
        } catch (ConfigException.BadPath e) {
            throw new InvalidSettingException("-D", e.getMessage());
        } catch (ConfigException e) {
            throw new InvalidSettingException("configuration", e.getMessage());
        }
    }

    /** Validates the {@code weft} section; relative paths are resolved against {@code workingDir}. */
    public static NodeSettings parse(Config config, Path workingDir) {
        Reader r = new Reader(config);
        r.rejectUnknownKeys();
        Path dataDir = workingDir.resolve(r.nonEmptyString("weft.data-dir")).normalize().toAbsolutePath();

        Optional<HostPort> nbdListen = r.optionalHostPort("weft.nbd.listen");
        String socket = r.nonEmptyString("weft.nbd.unix-socket");
        Optional<Path> unixSocket = OFF.equals(socket)
                ? Optional.empty() : Optional.of(dataDir.resolve(socket).normalize());
        Optional<HostPort> httpListen = Optional.empty();
        if (r.bool("weft.management.http.enabled")) {
            String host = r.nonEmptyString("weft.management.http.hostname");
            int port = r.integer("weft.management.http.port", 0, 65535);
            httpListen = Optional.of(new HostPort(host, port));
        }
        r.integer("weft.cluster.port", 0, 65535);
        validateControlPlane(config);
        List<VolumeSettings> volumes = r.volumes(dataDir);
        if (nbdListen.isEmpty() && unixSocket.isEmpty()) {
            throw new InvalidSettingException("weft.nbd.listen",
                    "NBD is off on TCP and on the Unix socket (weft.nbd.unix-socket); enable at least one");
        }
        Optional<Path> tlsCertificates = io.weft.actors.security.NodeTls.certificatesDir(config)
                .map(p -> workingDir.resolve(config.getString(io.weft.actors.security.NodeTls.CERTIFICATES).strip())
                        .normalize());
        return new NodeSettings(dataDir, nbdListen, unixSocket, httpListen, volumes, tlsCertificates);
    }

    /** The control plane's own keys, checked before anything is created (it reads them again when it starts). */
    private static void validateControlPlane(Config config) {
        try {
            io.weft.actors.WeftSettings.from(config);
            io.weft.actors.client.NbdServerExporter.serverOptions(config); // weft.nbd limits and timeouts
            io.weft.actors.security.NodeTls.layout(config); // weft.tls.certificates complete
            io.weft.actors.security.NetworkExposure.check(config); // no listener off loopback without TLS
        } catch (ConfigException e) {
            String m = e.getMessage() == null ? "" : e.getMessage();
            java.util.regex.Matcher k = Pattern.compile("(weft\\.[A-Za-z0-9._-]+)").matcher(m);
            String key = k.find() ? k.group(1) : "weft";
            throw new InvalidSettingException(key,
                    m.substring(m.indexOf(key) + key.length()).replaceFirst("^:?\\s*", ""));
        } catch (IllegalArgumentException e) {
            String m = String.valueOf(e.getMessage());
            int colon = m.indexOf(": ");
            if (m.startsWith("weft.") && colon > 0) {
                throw new InvalidSettingException(m.substring(0, colon), m.substring(colon + 2));
            }
            throw new InvalidSettingException("weft", m);
        }
    }

    /** Typed access that reports problems by key. */
    private static final class Reader {
        private final Config config;

        Reader(Config config) {
            this.config = config;
        }

        void rejectUnknownKeys() {
            if (!config.hasPath("weft")) {
                throw new InvalidSettingException("weft", "missing: no reference.conf defines the weft section");
            }
            if (config.getValue("weft").valueType() != ConfigValueType.OBJECT) {
                throw new InvalidSettingException("weft", "expected an object, got " + describe("weft"));
            }
            // Only what reference.conf files define: defaultReference() would already hold the system properties.
            Config reference = ConfigFactory.defaultReferenceUnresolved().withOnlyPath("weft").resolve();
            for (Map.Entry<String, ConfigValue> entry : config.getConfig("weft").entrySet()) {
                String key = "weft." + entry.getKey();
                if (key.startsWith("weft.pekko.")) {
                    continue;
                }
                if (io.weft.rdma.RdmaJvmSwitches.isSwitch(key)) {
                    if (System.getProperty(key) != null) {
                        continue; // the RDMA data plane reads it as a system property itself
                    }
                    throw new InvalidSettingException(key, "a JVM switch of the RDMA data plane, not a setting: it is"
                            + " read only as a JVM system property, e.g. WEFT_JAVA_OPTS=\"-D" + key + "=...\"");
                }
                if (key.startsWith("weft.http.")) {
                    throw new InvalidSettingException(key, "replaced by weft.management.http.hostname, .port and"
                            + " .enabled (or --http-listen HOST:PORT|off)");
                }
                if (!reference.hasPathOrNull(key) && !underKnownLeaf(reference, key)) {
                    throw new InvalidSettingException(key, "unknown setting" + knownSiblings(reference, key));
                }
            }
        }

        /** A user may write an object where reference.conf has a scalar; the type check reports that later. */
        private static boolean underKnownLeaf(Config reference, String key) {
            int dot = key.lastIndexOf('.');
            while (dot > "weft".length()) {
                String parent = key.substring(0, dot);
                if (reference.hasPathOrNull(parent)) {
                    return reference.getValue(parent).valueType() != ConfigValueType.OBJECT;
                }
                dot = parent.lastIndexOf('.');
            }
            return false;
        }

        private static String knownSiblings(Config reference, String key) {
            int dot = key.lastIndexOf('.');
            String parent = key.substring(0, dot);
            while (!reference.hasPath(parent) && parent.contains(".")) {
                parent = parent.substring(0, parent.lastIndexOf('.'));
            }
            if (!reference.hasPath(parent) || reference.getValue(parent).valueType() != ConfigValueType.OBJECT) {
                return "";
            }
            Set<String> names = new TreeSet<>(reference.getObject(parent).keySet());
            return " (known under " + parent + ": " + String.join(", ", names) + ")";
        }

        private String describe(String key) {
            ConfigValue value = config.getValue(key);
            Object raw = value.unwrapped();
            return value.valueType() == ConfigValueType.STRING ? "\"" + raw + "\""
                    : value.valueType().name().toLowerCase() + " " + raw;
        }

        private void requirePresent(String key) {
            if (!config.hasPathOrNull(key) || config.getIsNull(key)) {
                throw new InvalidSettingException(key, "missing (required)");
            }
        }

        String nonEmptyString(String key) {
            requirePresent(key);
            ConfigValueType type = config.getValue(key).valueType();
            if (type == ConfigValueType.OBJECT || type == ConfigValueType.LIST) {
                throw new InvalidSettingException(key, "expected a string, got " + type.name().toLowerCase());
            }
            String value = config.getString(key);
            if (value.isBlank()) {
                throw new InvalidSettingException(key, "must not be empty");
            }
            return value;
        }

        Optional<HostPort> optionalHostPort(String key) {
            String value = nonEmptyString(key);
            return OFF.equals(value) ? Optional.empty() : Optional.of(HostPort.parse(key, value));
        }

        boolean bool(String key) {
            requirePresent(key);
            try {
                return config.getBoolean(key);
            } catch (ConfigException.WrongType e) {
                throw new InvalidSettingException(key, "expected true or false, got " + describe(key));
            }
        }

        int integer(String key, int min, int max) {
            requirePresent(key);
            long value;
            try {
                value = config.getLong(key);
            } catch (ConfigException.WrongType e) {
                throw new InvalidSettingException(key, "expected a whole number, got " + describe(key));
            }
            if (value < min || value > max) {
                throw new InvalidSettingException(key, "must be between " + min + " and " + max + ", got " + value);
            }
            return (int) value;
        }

        long size(String key, long min, long max) {
            requirePresent(key);
            long value;
            try {
                value = config.getBytes(key);
            } catch (ConfigException.WrongType | ConfigException.BadValue e) {
                throw new InvalidSettingException(key, "expected a size such as 1g, 512m or 4096, got "
                        + describe(key));
            }
            if (value < min || value > max) {
                throw new InvalidSettingException(key, "must be between " + min + " and " + max + " bytes, got "
                        + value);
            }
            return value;
        }

        Duration duration(String key, Duration min) {
            requirePresent(key);
            Duration value;
            try {
                value = config.getDuration(key);
            } catch (ConfigException.WrongType | ConfigException.BadValue e) {
                throw new InvalidSettingException(key, "expected a duration such as 10s or 500ms, got "
                        + describe(key));
            }
            if (value.compareTo(min) < 0) {
                throw new InvalidSettingException(key, "must be at least " + min.toMillis() + "ms, got "
                        + value.toMillis() + "ms");
            }
            return value;
        }

        List<VolumeSettings> volumes(Path dataDir) {
            String key = "weft.volumes";
            requirePresent(key);
            if (config.getValue(key).valueType() != ConfigValueType.LIST) {
                String hint = config.getValue(key).valueType() == ConfigValueType.OBJECT
                        && config.getObject(key).keySet().stream().allMatch(k -> k.matches("\\d+"))
                        ? " (a list cannot be changed entry by entry with -D; set weft.volumes in a --config file)"
                        : "";
                throw new InvalidSettingException(key, "expected a list of volumes, got " + describe(key) + hint);
            }
            List<? extends ConfigValue> entries = config.getList(key);
            List<VolumeSettings> volumes = new ArrayList<>();
            Set<String> names = new HashSet<>();
            Set<Path> paths = new HashSet<>();
            for (int i = 0; i < entries.size(); i++) {
                String at = key + "[" + i + "]";
                if (entries.get(i).valueType() != ConfigValueType.OBJECT) {
                    throw new InvalidSettingException(at, "expected an object with name, path, ..., got "
                            + entries.get(i).valueType().name().toLowerCase());
                }
                Config entry = ((com.typesafe.config.ConfigObject) entries.get(i)).toConfig();
                VolumeSettings volume = volume(at, entry, dataDir);
                if (!names.add(volume.name())) {
                    throw new InvalidSettingException(at + ".name", "duplicate volume name \"" + volume.name()
                            + "\"");
                }
                if (!paths.add(volume.path())) {
                    throw new InvalidSettingException(at + ".path", "another volume already uses " + volume.path());
                }
                volumes.add(volume);
            }
            return volumes;
        }

        private static VolumeSettings volume(String at, Config entry, Path dataDir) {
            for (String k : entry.root().keySet()) {
                if (!VOLUME_KEYS.contains(k)) {
                    throw new InvalidSettingException(at + "." + k, "unknown setting (known: "
                            + String.join(", ", new TreeSet<>(VOLUME_KEYS)) + ")");
                }
            }
            Reader r = new Reader(entry);
            String name = r.prefixed(at, () -> r.nonEmptyString("name"));
            if (!VOLUME_NAME.matcher(name).matches()) {
                throw new InvalidSettingException(at + ".name", "expected letters, digits, '.', '_' or '-', got \""
                        + name + "\"");
            }
            Path path = dataDir.resolve(r.prefixed(at, () -> r.nonEmptyString("path"))).normalize();
            OptionalLong size = OptionalLong.empty();
            if (entry.hasPath("size")) {
                long bytes = r.prefixed(at, () -> r.size("size", 1, Long.MAX_VALUE / 2));
                if (bytes % SIZE_ALIGNMENT != 0) {
                    throw new InvalidSettingException(at + ".size",
                            "must be a positive multiple of 4k (4096 bytes), got " + bytes);
                }
                size = OptionalLong.of(bytes);
            }
            boolean readOnly = entry.hasPath("read-only") && r.prefixed(at, () -> r.bool("read-only"));
            String description = "";
            if (entry.hasPath("description")) {
                if (entry.getValue("description").valueType() != ConfigValueType.STRING) {
                    throw new InvalidSettingException(at + ".description", "expected a string, got "
                            + entry.getValue("description").valueType().name().toLowerCase());
                }
                description = entry.getString("description");
            }
            return new VolumeSettings(at, name, path, size, readOnly, description);
        }

        /** Runs a check on a volume entry and puts the entry's position in front of the key it reports. */
        <T> T prefixed(String at, java.util.function.Supplier<T> check) {
            try {
                return check.get();
            } catch (InvalidSettingException e) {
                String problem = e.getMessage().substring(e.key().length() + 2);
                throw new InvalidSettingException(at + "." + e.key(), problem);
            }
        }
    }
}
