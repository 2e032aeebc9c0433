package io.weft.actors;

/**
 * The outcome of reading a device's first block through its whole IO path ({@code WeftRuntime.probe}).
 *
 * @param status        {@code OK} or the error name ({@code EIO}, {@code ENOTSUP}, ...)
 * @param bytes         bytes read
 * @param latencyMicros time to completion
 * @param stateAfter    device state when the probe completed
 */
public record ProbeResult(String deviceId, String status, int bytes, long latencyMicros, String stateAfter) {
}
