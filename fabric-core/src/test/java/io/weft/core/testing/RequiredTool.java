package io.weft.core.testing;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Tests that drive real clients (qemu-io, nbdinfo, fio, ...) call this first: a missing tool fails the test with the
 * Debian package to install, never a silent skip.
 */
public final class RequiredTool {
    private RequiredTool() {
    }

    /** @return the absolute path of {@code command} on PATH (or /usr/sbin, /sbin) */
    public static Path require(String command, String debianPackage) {
        String pathEnv = System.getenv().getOrDefault("PATH", "") + File.pathSeparator + "/usr/sbin:/sbin";
        for (String dir : pathEnv.split(File.pathSeparator)) {
            if (dir.isEmpty()) {
                continue;
            }
            Path candidate = Path.of(dir, command);
            if (Files.isExecutable(candidate)) {
                return candidate;
            }
        }
        throw new AssertionError("'" + command + "' is not installed: install the Debian package '" + debianPackage
                + "' (apt-get install " + debianPackage + ") or run the README's test command, which installs it");
    }
}
