package io.weft.core.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class DeviceInfoTest {

    @Test
    void everyCapabilityBitSurvivesTheRoundTripAlone() {
        for (int bit = 0; bit < 8; bit++) {
            int caps = 1 << bit;
            DeviceInfo info = DeviceInfo.fromCapabilityBits(1 << 20, 512, 4096, 1 << 17, caps);
            assertEquals(caps, info.capabilityBits(), "bit " + bit);
        }
        DeviceInfo all = DeviceInfo.fromCapabilityBits(1 << 20, 512, 4096, 1 << 17, 0xff);
        assertEquals(0xff, all.capabilityBits());
    }

    @Test
    void bitsMapOntoTheNamedFlags() {
        DeviceInfo info = DeviceInfo.fromCapabilityBits(1 << 20, 512, 4096, 1 << 17,
                DeviceInfo.CAP_READ_ONLY | DeviceInfo.CAP_FLUSH_COVERS_ALL_CONNECTIONS);
        assertEquals(new DeviceInfo(1 << 20, 512, 4096, 1 << 17, true, false, false, false, false, false, false, true),
                info);
    }

    @Test
    void aPeersInvalidGeometryIsRefused() {
        assertThrows(IllegalArgumentException.class,
                () -> DeviceInfo.fromCapabilityBits(1 << 20, 500, 4096, 1 << 17, 0));
    }
}
