package io.weft.actors;

/**
 * The answer to a management operation (map, unmap, resize, volume create ...), local or from another node.
 *
 * @param ok      whether it was done
 * @param message what was done, or what went wrong and what to do about it
 */
public record Reply(boolean ok, String message) implements WeftSerializable {
    public static Reply ok(String message) {
        return new Reply(true, message);
    }

    public static Reply error(String message) {
        return new Reply(false, message);
    }
}
