/**
 * Weft's IO model: operations, flags, status codes and the asynchronous {@link io.weft.core.io.BlockDevice} API that
 * stores implement, transports carry and the NBD server exports.
 */
package io.weft.core.io;
