package io.weft.actors.management;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.actors.AccessMode;
import io.weft.actors.DeviceState;
import io.weft.actors.MapSpec;
import io.weft.actors.NodeState;
import io.weft.actors.client.QueueingBlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.stats.IoStats;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class DeviceSamplerTest {
    private static final DeviceInfo INFO = new DeviceInfo(1 << 20, 512, 4096, 1 << 16, false, true, true, false,
            true, false, false, true);

    private final NodeState state = new NodeState();
    private final AtomicLong clock = new AtomicLong(1_000);

    private NodeState.DeviceEntry map(String id) {
        QueueingBlockDevice device = new QueueingBlockDevice(INFO, 8, 1_000_000_000L, new IoStats(id));
        NodeState.DeviceEntry e = new NodeState.DeviceEntry(state,
                new MapSpec(id, "s", id + ".img", AccessMode.RW, "inprocess"), device);
        e.update(d -> d.withState(DeviceState.READY));
        state.putDevice(e);
        return e;
    }

    private void tick(DeviceSampler sampler) {
        clock.addAndGet(1000);
        sampler.tick();
    }

    @Test
    void aSampleHoldsTheRatesAndLatenciesOfItsIntervalOnly() {
        DeviceSampler sampler = new DeviceSampler(state, 10, Duration.ofSeconds(1), clock::get);
        NodeState.DeviceEntry vol = map("vol0");
        vol.device.stats().record(IoOp.WRITE, 4096, IoStatus.OK, 7_000_000); // before the ring: not in any sample
        tick(sampler); // sets the baseline
        assertEquals(List.of(), sampler.samples("vol0", 0), "the first tick only sets the counters' baseline");

        for (int i = 0; i < 3; i++) {
            vol.device.stats().record(IoOp.READ, 8192, IoStatus.OK, 200_000);
        }
        vol.device.stats().record(IoOp.WRITE, 4096, IoStatus.EIO, 50_000);
        vol.device.stats().snapshot(); // an HTTP status read in between takes nothing from the sample
        tick(sampler);

        List<DeviceSampler.Sample> samples = sampler.samples("vol0", 0);
        assertEquals(1, samples.size());
        DeviceSampler.Sample s = samples.get(0);
        double seconds = s.intervalMillis() / 1000;
        assertEquals(3, Math.round(s.readIops() * seconds));
        assertEquals(3 * 8192, Math.round(s.readBytesPerSecond() * seconds));
        assertEquals(1, Math.round(s.writeIops() * seconds));
        assertEquals(0, Math.round(s.writeBytesPerSecond() * seconds), "a failed write moves no bytes");
        assertEquals(1, s.errors());
        assertEquals(200, s.readP99Micros(), 200 * 0.01 + 1);
        assertEquals(50, s.writeP99Micros(), 50 * 0.01 + 1, "the 7 ms write before the ring is not in this window");
        assertEquals("ready", s.state());
        assertEquals(-1, s.resyncPercent(), "not a mirror");
        assertEquals(clock.get(), s.atMillis());

        tick(sampler);
        DeviceSampler.Sample idle = sampler.samples("vol0", 0).get(1);
        assertEquals(0, idle.readIops());
        assertEquals(0, idle.readP99Micros(), "no request completed in the interval");
    }

    @Test
    void theRingKeepsTheLastSamplesOldestFirstAndAnswersFromAGivenTime() {
        DeviceSampler sampler = new DeviceSampler(state, 4, Duration.ofSeconds(1), clock::get);
        map("vol0");
        tick(sampler);
        for (int i = 0; i < 6; i++) {
            tick(sampler);
        }
        List<DeviceSampler.Sample> all = sampler.samples("vol0", 0);
        assertEquals(4, all.size(), "capacity");
        for (int i = 1; i < all.size(); i++) {
            assertEquals(all.get(i - 1).atMillis() + 1000, all.get(i).atMillis());
        }
        assertEquals(clock.get(), all.get(3).atMillis(), "the newest last");
        assertEquals(all.subList(2, 4), sampler.samples("vol0", all.get(1).atMillis()));
        assertEquals(List.of(), sampler.samples("vol0", clock.get()));
        assertEquals(List.of(), sampler.samples("nope", 0));
    }

    @Test
    void anUnmappedDeviceLosesItsRingAndOneMappedAgainStartsANewOne() {
        DeviceSampler sampler = new DeviceSampler(state, 10, Duration.ofSeconds(1), clock::get);
        NodeState.DeviceEntry first = map("vol0");
        tick(sampler);
        tick(sampler);
        assertEquals(1, sampler.samples("vol0", 0).size());

        state.removeDevice("vol0", first);
        tick(sampler);
        assertTrue(sampler.devices().isEmpty(), sampler.devices().toString());
        assertEquals(List.of(), sampler.samples("vol0", 0));

        map("vol0");
        tick(sampler);
        assertEquals(List.of(), sampler.samples("vol0", 0), "a new mapping starts with a new baseline");
        tick(sampler);
        assertEquals(1, sampler.samples("vol0", 0).size());
    }
    @Test
    void aDeviceWithoutIoTakesNoStatisticsSnapshotYetStillGetsItsIdleSample() {
        DeviceSampler sampler = new DeviceSampler(state, 10, Duration.ofSeconds(1), clock::get);
        NodeState.DeviceEntry vol = map("vol0");
        vol.device.stats().record(IoOp.READ, 4096, IoStatus.OK, 100_000);
        tick(sampler); // baseline: one statistics sample of the device
        long windowAfterBaseline = vol.device.stats().peek().intervalNanos();

        tick(sampler);
        tick(sampler);
        assertEquals(windowAfterBaseline, vol.device.stats().peek().intervalNanos(),
                "an idle device's histograms were snapshotted by the sampler (per-device work with no IO)");
        List<DeviceSampler.Sample> idle = sampler.samples("vol0", 0);
        assertEquals(2, idle.size(), "the idle intervals still have their (empty) samples for the charts");
        assertEquals(0, idle.get(1).readIops());
        assertEquals(0, idle.get(1).readP99Micros());
        assertEquals("ready", idle.get(1).state());

        for (int i = 0; i < 5; i++) {
            vol.device.stats().record(IoOp.READ, 8192, IoStatus.OK, 300_000);
        }
        tick(sampler);
        DeviceSampler.Sample busy = sampler.samples("vol0", 0).get(2);
        assertEquals(5, Math.round(busy.readIops() * busy.intervalMillis() / 1000),
                "IO after idle intervals is counted in the interval it completed in");
        assertEquals(300, busy.readP99Micros(), 300 * 0.01 + 1);
    }
}
