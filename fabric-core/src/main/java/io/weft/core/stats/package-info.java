/**
 * IO statistics per device: {@link io.weft.core.stats.IoStats} (wait-free recording of ops, bytes, errors, in-flight
 * and HdrHistogram latencies; immutable snapshots for readers) and {@link io.weft.core.stats.StatsBlockDevice}, a
 * decorator that measures any {@link io.weft.core.io.BlockDevice} without allocating per request.
 */
package io.weft.core.stats;
