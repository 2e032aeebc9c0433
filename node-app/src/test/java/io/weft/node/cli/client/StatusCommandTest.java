package io.weft.node.cli.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;

class StatusCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void aRunningResyncGetsAProgressBar() throws Exception {
        JsonNode resync = JSON.readTree("{\"leg\":1,\"running\":true,\"full\":false,\"regionsDone\":9,"
                + "\"regionsTotal\":20,\"bytesCopied\":9437184,\"bytesPerSecond\":1048576,\"etaMillis\":1500,"
                + "\"percent\":45,\"lastError\":\"\"}");
        String bar = StatusCommand.progressBar(resync);
        assertTrue(bar.startsWith("[#########-----------]  45%  9/20 regions"), bar);
        assertTrue(bar.endsWith("ETA 2s"), bar);
    }

    @Test
    void mirroredDevicesListTheirLegs() throws Exception {
        JsonNode device = JSON.readTree("{\"id\":\"m\",\"mirror\":{\"legCount\":2,\"degraded\":true,"
                + "\"dirtyRegions\":3,\"regionSize\":1048576,\"legs\":["
                + "{\"index\":0,\"storageNode\":\"a\",\"path\":\"x.img\",\"state\":\"in-sync\"},"
                + "{\"index\":1,\"storageNode\":\"b\",\"path\":\"x.img\",\"state\":\"failed\"}],"
                + "\"resync\":{\"leg\":-1,\"running\":false,\"percent\":100,\"lastError\":\"\"}}}");
        StringWriter text = new StringWriter();
        StatusCommand.printMirror(new PrintWriter(text, true), device);
        String out = text.toString();
        assertTrue(out.contains("mirror m: 2 legs, DEGRADED, 3 dirty region(s)"), out);
        assertTrue(out.lines().anyMatch(l -> l.matches("1\\s+b\\s+x\\.img\\s+failed\\s+-")), out);
        assertEquals(-1, out.indexOf('#'), "no progress bar without a resync: " + out);
    }
}
