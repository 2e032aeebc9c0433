/**
 * The NBD server: exports {@link io.weft.core.io.BlockDevice}s to any NBD client (kernel nbd-client, qemu, libnbd,
 * fio) over TCP and Unix sockets. {@link io.weft.core.nbd.NbdServer} is the entry point; the wire format lives in
 * flyweights ({@code NbdRequestHeader}, {@code NbdReplyEncoder}); {@code NbdHandshake} negotiates, and
 * {@code NbdConnection} runs the transmission phase (see its Javadoc for the threading model). User documentation:
 * {@code docs/nbd.md}.
 */
package io.weft.core.nbd;
