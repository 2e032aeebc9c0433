package io.weft.node.config;

/**
 * A listen address from a {@code HOST:PORT} setting. IPv6 hosts are written in brackets ({@code [::1]:10809});
 * {@link #host()} holds them without.
 */
public record HostPort(String host, int port) {

    /**
     * @param key   the setting, for the error message
     * @param value e.g. {@code 127.0.0.1:10809}
     */
    public static HostPort parse(String key, String value) {
        String host;
        String portText;
        if (value.startsWith("[")) {
            int close = value.indexOf(']');
            if (close < 0 || close + 1 >= value.length() || value.charAt(close + 1) != ':') {
                throw expected(key, value);
            }
            host = value.substring(1, close);
            portText = value.substring(close + 2);
        } else {
            int colon = value.lastIndexOf(':');
            if (colon <= 0 || value.indexOf(':') != colon) {
                throw expected(key, value);
            }
            host = value.substring(0, colon);
            portText = value.substring(colon + 1);
        }
        if (host.isBlank() || host.chars().anyMatch(Character::isWhitespace) || portText.isEmpty()
                || !portText.chars().allMatch(c -> c >= '0' && c <= '9') || portText.length() > 5) {
            throw expected(key, value);
        }
        int port = Integer.parseInt(portText);
        if (port > 65535) {
            throw new InvalidSettingException(key, "port must be 0..65535, got " + port);
        }
        return new HostPort(host, port);
    }

    private static InvalidSettingException expected(String key, String value) {
        return new InvalidSettingException(key, "expected HOST:PORT (or \"off\"), got \"" + value + "\"");
    }

    /** The address as it would be written in a setting. */
    @Override
    public String toString() {
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }
}
