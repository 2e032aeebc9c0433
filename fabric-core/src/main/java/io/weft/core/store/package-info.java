/**
 * Backing stores: {@link io.weft.core.store.FileBackingStore} (regular files and raw block devices; positional IO,
 * flush, hole punching, allocation maps, optional O_DIRECT; locked at open, and opened beneath an export root
 * without following symlinks out of it), {@link io.weft.core.store.StoreBlockDevice} (the
 * {@link io.weft.core.io.BlockDevice} over a store, inline) and {@link io.weft.core.store.IoWorkerBlockDevice}
 * (worker threads in front of slow stores).
 */
package io.weft.core.store;
