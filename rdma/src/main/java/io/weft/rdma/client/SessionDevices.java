package io.weft.rdma.client;

import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoStatus;
import io.weft.rdma.protocol.AdminChannel;
import io.weft.rdma.protocol.Capability;
import io.weft.rdma.protocol.ControlMessage;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The devices opened inside one session and their open/close protocol with the storage side: DEVICE_OPEN, the
 * storage side's DEVICE_CHALLENGE (checked against the device's grant), the client's DEVICE_PROOF, DEVICE_OK with the
 * device's id and geometry; DEVICE_CLOSE/DEVICE_CLOSED; and every device opened again when a reconnect lands on a new
 * storage session. At most {@link #MAX_DEVICE_OPS_IN_FLIGHT} messages wait for an answer at once.
 *
 * <p>Threads: {@link #register} and {@link #close} from any thread (they queue a command and wake the control
 * thread); everything else on the session's control thread, which owns each device's open state ({@code state},
 * {@code askedOn}, {@code clientNonce}) and the pending closes.
 */
final class SessionDevices {
    private static final Logger LOG = LoggerFactory.getLogger(SessionDevices.class);
    /** At most this many device messages wait for an answer at once: the peer has few receive slots. */
    static final int MAX_DEVICE_OPS_IN_FLIGHT = 4;

    /** A device id to close in the current storage session, and the channel it was last asked on. */
    private static final class PendingClose {
        final int id;
        AdminChannel askedOn;

        PendingClose(int id) {
            this.id = id;
        }
    }

    private final RdmaSession session;
    /** Every device opened and not closed; written by the control thread and register/close, read anywhere. */
    private final CopyOnWriteArrayList<RdmaBlockDevice> devices = new CopyOnWriteArrayList<>();
    /** Devices to open or whose close the storage side must be told (any thread to the control thread). */
    private final ConcurrentLinkedQueue<RdmaBlockDevice> commands = new ConcurrentLinkedQueue<>();
    private final AtomicInteger nextRequestId = new AtomicInteger();
    /** DEVICE_CLOSEs to send or waiting for DEVICE_CLOSED (control thread). */
    private final List<PendingClose> pendingCloses = new ArrayList<>();

    SessionDevices(RdmaSession session) {
        this.session = session;
    }

    /** Any thread: a new device to open; the control thread sends its DEVICE_OPEN. */
    RdmaBlockDevice register(String deviceName, io.weft.rdma.protocol.Grant grant, boolean ownsSession) {
        RdmaBlockDevice d = new RdmaBlockDevice(session, deviceName, grant, nextRequestId.incrementAndGet(),
                ownsSession);
        devices.add(d);
        commands.add(d);
        return d;
    }

    /**
     * Any thread: forgets a closed device; the control thread tells the storage side. An answer still coming for
     * it finds no device and is closed again.
     */
    void close(RdmaBlockDevice d) {
        devices.remove(d);
        commands.add(d);
    }

    List<RdmaBlockDevice> list() {
        return List.copyOf(devices);
    }

    /** Session close: every device is closed and an open still waiting fails. */
    void closeAll() {
        for (RdmaBlockDevice d : devices) {
            d.closed = true;
            d.opened.completeExceptionally(new IOException("session '" + session.name + "' closed"));
        }
    }

    /**
     * Control thread: a reconnect landed on a new storage session (first open, storage restart, or every path was
     * lost): device ids of the old one mean nothing there, every device is opened again.
     */
    void newStorageSession() {
        pendingCloses.clear();
        for (RdmaBlockDevice d : devices) {
            d.remoteId = -1;
            if (d.state != RdmaBlockDevice.GONE) {
                d.state = RdmaBlockDevice.NEEDS_OPEN;
                d.askedOn = null;
            }
        }
    }

    /** Control thread: {@code channel} is gone; what was asked on it is asked again on another path. */
    void channelLost(AdminChannel channel) {
        for (RdmaBlockDevice d : devices) {
            if (d.askedOn == channel && (d.state == RdmaBlockDevice.CHALLENGED || d.state == RdmaBlockDevice.PROVING)) {
                d.state = RdmaBlockDevice.NEEDS_OPEN; // asked again on another path
                d.askedOn = null;
            }
        }
        for (PendingClose c : pendingCloses) {
            if (c.askedOn == channel) {
                c.askedOn = null;
            }
        }
    }

    /**
     * Control thread: takes new device opens and closes, and sends the DEVICE_OPENs (re-opens after a new storage
     * session included) and DEVICE_CLOSEs due on {@code via} (a connected path's admin channel, or null when none is),
     * at most {@link #MAX_DEVICE_OPS_IN_FLIGHT} waiting for an answer at once.
     */
    void step(AdminChannel via) {
        RdmaBlockDevice command;
        while ((command = commands.poll()) != null) {
            if (command.closed) {
                int id = command.remoteId;
                command.remoteId = -1;
                if (id >= 0) {
                    pendingCloses.add(new PendingClose(id)); // a DEVICE_OK still on its way is closed when it comes
                }
                command.state = RdmaBlockDevice.GONE;
                command.opened.completeExceptionally(new IOException("device closed"));
            }
        }
        if (via == null) {
            return;
        }
        int inFlight = 0;
        for (PendingClose c : pendingCloses) {
            if (c.askedOn != null) {
                inFlight++;
            }
        }
        for (RdmaBlockDevice d : devices) {
            if (d.state == RdmaBlockDevice.CHALLENGED || d.state == RdmaBlockDevice.PROVING) {
                inFlight++;
            }
        }
        for (PendingClose c : pendingCloses) {
            if (inFlight >= MAX_DEVICE_OPS_IN_FLIGHT) {
                return;
            }
            if (c.askedOn == null) {
                ControlMessage m = via.beginSend();
                if (via.send(m.encodeDeviceClose(ControlMessage.DEVICE_CLOSE, c.id, 0))) {
                    c.askedOn = via;
                    inFlight++;
                }
            }
        }
        for (RdmaBlockDevice d : devices) {
            if (inFlight >= MAX_DEVICE_OPS_IN_FLIGHT) {
                return;
            }
            if (d.state == RdmaBlockDevice.NEEDS_OPEN && d.usable()) {
                d.clientNonce = Capability.nonce();
                ControlMessage m = via.beginSend();
                if (via.send(m.encodeDeviceOpen(d.requestId, d.name, d.clientNonce))) {
                    d.state = RdmaBlockDevice.CHALLENGED;
                    d.askedOn = via;
                    inFlight++;
                }
            }
        }
    }

    private RdmaBlockDevice byRequest(int requestId) {
        for (RdmaBlockDevice d : devices) {
            if (d.requestId == requestId) {
                return d;
            }
        }
        return null;
    }

    /**
     * Control thread: a device's open ended without an id (refused, or its proof failed), or it is no longer served.
     */
    private void openFailed(RdmaBlockDevice d, String reason) {
        d.state = RdmaBlockDevice.GONE;
        d.remoteId = -1;
        d.failure = reason;
        if (!d.opened.completeExceptionally(new IOException(reason))) {
            LOG.warn("session '{}': device '{}' failed: {}", session.name, d.name, reason);
        }
        session.wakeQueues(); // its queued requests fail now instead of waiting for a path
    }

    /** Control thread: a DEVICE_* message arrived on {@code channel}. */
    void onMessage(AdminChannel channel, ControlMessage m, int byteLength) {
        int type = m.type();
        if (type == ControlMessage.DEVICE_CLOSED) {
            int id = m.deviceCloseId();
            if (m.deviceCloseStatus() == IoStatus.ESHUTDOWN) {
                for (RdmaBlockDevice d : devices) {
                    if (d.remoteId == id && d.state == RdmaBlockDevice.OPEN) {
                        openFailed(d, "the storage node no longer serves device '" + d.name + "'");
                    }
                }
            } else {
                pendingCloses.removeIf(c -> c.id == id && c.askedOn == channel);
            }
            return;
        }
        RdmaBlockDevice d = byRequest(m.deviceRequestId());
        if (d == null) {
            if (type == ControlMessage.DEVICE_OK) {
                pendingCloses.add(new PendingClose(m.deviceOkId())); // closed while its open was answered
            }
            return;
        }
        if (d.askedOn != channel) {
            return; // an answer on a channel it is no longer waiting on
        }
        switch (type) {
            case ControlMessage.DEVICE_CHALLENGE: {
                if (d.state != RdmaBlockDevice.CHALLENGED) {
                    return;
                }
                ClientPath p = (ClientPath) channel.owner();
                Capability.Transcript t = new Capability.Transcript(d.clientNonce, m.challengeServerNonce(),
                        session.name, d.requestId, d.grant.clientNode(), d.grant.identity(), d.name);
                if (!Capability.matches(Capability.deviceServerProof(d.grant, t), m.challengeServerProof())) {
                    openFailed(d, "the storage side at " + p.spec.remote() + " could not prove it holds the"
                            + " grant of device '" + d.name + "'");
                    return;
                }
                ControlMessage proof = channel.beginSend();
                channel.send(proof.encodeDeviceProof(d.requestId, Capability.deviceClientProof(d.grant, t)));
                d.state = RdmaBlockDevice.PROVING;
                break;
            }
            case ControlMessage.DEVICE_OK: {
                if (d.state != RdmaBlockDevice.PROVING) {
                    return;
                }
                DeviceInfo current = d.info;
                int maxIo = current != null ? current.maxIoSize()
                        : Math.min(Math.min(session.config.maxIoSize(), session.grantedMaxIo()),
                                m.deviceOkMaxIoSize());
                if (maxIo < 512 || m.deviceOkSize() < 0) {
                    openFailed(d, "storage answered device '" + d.name + "' with max IO " + maxIo
                            + " and size " + m.deviceOkSize());
                    return;
                }
                DeviceInfo next = DeviceInfo.fromCapabilityBits(m.deviceOkSize(), m.deviceOkLogicalBlock(),
                        m.deviceOkPreferredBlock(), maxIo, m.deviceOkCapabilities());
                if (!next.equals(current)) {
                    d.info = next;
                }
                d.remoteId = m.deviceOkId();
                d.state = RdmaBlockDevice.OPEN;
                d.opened.complete(null);
                session.wakeQueues();
                break;
            }
            case ControlMessage.DEVICE_ERR:
                if (d.state == RdmaBlockDevice.CHALLENGED || d.state == RdmaBlockDevice.PROVING) {
                    openFailed(d, "storage refused device '" + d.name + "': "
                            + IoStatus.name(m.deviceErrStatus()) + ": " + m.deviceErrReason(byteLength));
                }
                break;
            default:
                break;
        }
    }
}
