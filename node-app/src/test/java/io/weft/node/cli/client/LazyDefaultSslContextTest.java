package io.weft.node.cli.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import org.junit.jupiter.api.Test;

/** The lazily made context behaves as the JDK's default one once it is used (an https node still works). */
class LazyDefaultSslContextTest {
    @Test
    void delegatesToTheDefaultContextOnFirstUse() throws Exception {
        SSLContext lazy = new LazyDefaultSslContext();
        SSLContext real = SSLContext.getDefault();
        assertArrayEquals(real.getDefaultSSLParameters().getProtocols(), lazy.getDefaultSSLParameters().getProtocols());
        assertArrayEquals(real.getDefaultSSLParameters().getCipherSuites(),
                lazy.getDefaultSSLParameters().getCipherSuites());
        SSLEngine engine = lazy.createSSLEngine("node.example", 7626);
        assertEquals("node.example", engine.getPeerHost());
        assertNotNull(lazy.getSocketFactory());
    }
}
