package io.weft.node.http;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.stats.IoStats;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ManagementHttpTest {
    @Test
    void prometheusTextHasCountersAndQuantilesPerVolumeAndOperation() {
        IoStats stats = new IoStats("vol\"0");
        for (int i = 0; i < 10; i++) {
            stats.record(IoOp.READ, 4096, IoStatus.OK, 50_000);
        }
        stats.record(IoOp.WRITE, 4096, IoStatus.EIO, 1_000);
        String text = ManagementHttp.prometheus(Map.of("vol\"0", stats.snapshot()));
        assertTrue(text.contains("# TYPE weft_volume_requests_total counter\n"), text);
        assertTrue(text.contains("weft_volume_requests_total{volume=\"vol\\\"0\",op=\"read\"} 10\n"), text);
        assertTrue(text.contains("weft_volume_bytes_total{volume=\"vol\\\"0\",op=\"read\"} 40960\n"), text);
        assertTrue(text.contains("weft_volume_errors_total{volume=\"vol\\\"0\",op=\"write\"} 1\n"), text);
        assertTrue(text.contains("weft_volume_in_flight{volume=\"vol\\\"0\"} 0\n"), text);
        assertTrue(text.matches("(?s).*weft_volume_latency_seconds\\{volume=\"vol\\\\\"0\",op=\"read\","
                + "quantile=\"0.99\"} 5\\.0\\d*E-5\n.*"), text);
    }
}
