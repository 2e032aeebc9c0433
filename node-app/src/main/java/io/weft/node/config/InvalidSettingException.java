package io.weft.node.config;

/**
 * A setting that stops start-up. The message names the key and says what was expected, e.g.
 * {@code weft.nbd.listen: expected HOST:PORT, got "x"}; it is shown to the user as is, without a stack trace.
 */
public final class InvalidSettingException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final String key;

    public InvalidSettingException(String key, String problem) {
        super(key + ": " + problem);
        this.key = key;
    }

    /** The offending key, e.g. {@code weft.volumes[0].size}. */
    public String key() {
        return key;
    }
}
