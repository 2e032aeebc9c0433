package io.weft.actors;

import io.weft.core.store.FileBackingStore;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The directories a storage node serves from. A client names a path; it is served only if its real path (every
 * symlink resolved) lies inside the real path of one root. {@code ..} segments are refused outright, so a request
 * never depends on how a path normalises.
 *
 * <p>The check is for a clear early answer; it is not what keeps a store inside its root. The store is opened (or
 * created) with {@link #open} / {@link #create}, relative to a descriptor of the root in the kernel, so a symlink
 * swapped in after the check cannot lead the open outside ({@link FileBackingStore#openBeneath}).
 *
 * <p>The node's data directory is an export root of its own, and also holds the node's state: those files
 * ({@link NodeStateFiles}) are never served, created, resized or listed.
 */
public final class ExportRoots {
    private final List<Path> roots;
    /** Real path of the node's data directory, when it exists: its state files are not volumes. */
    private final Optional<Path> stateDir;

    /** @param roots configured roots; each must exist (they are resolved to real paths once, here) */
    public ExportRoots(List<Path> roots) {
        this(roots, Optional.empty());
    }

    /** This node's roots, with its data directory's state files kept out. */
    public static ExportRoots forNode(WeftSettings settings) {
        return new ExportRoots(settings.exportRoots(), Optional.of(settings.dataDir()));
    }

    /**
     * @param roots    configured roots; each must exist (they are resolved to real paths once, here)
     * @param dataDir  the node's data directory, whose {@link NodeStateFiles} are refused (may not exist yet)
     */
    public ExportRoots(List<Path> roots, Optional<Path> dataDir) {
        this.stateDir = dataDir.map(NodeStateFiles::resolvedDataDir);
        List<Path> real = new ArrayList<>();
        for (Path root : roots) {
            try {
                real.add(root.toRealPath());
            } catch (IOException e) {
                throw new IllegalArgumentException("export root " + root + " does not exist or is unreadable", e);
            }
        }
        this.roots = List.copyOf(real);
    }

    public List<Path> roots() {
        return roots;
    }

    /** Raised when a path is not served; the message says why and is shown to the client. */
    public static final class RefusedPathException extends Exception {
        public RefusedPathException(String message) {
            super(message);
        }
    }

    /**
     * Resolves a requested path to the real path of an existing file under a root.
     *
     * @param requested absolute, or relative to the first root
     */
    public Path resolveExisting(String requested) throws RefusedPathException {
        Path candidate = candidate(requested);
        Path real;
        try {
            real = candidate.toRealPath();
        } catch (IOException e) {
            throw new RefusedPathException("no such backing store: " + requested);
        }
        requireInside(real, requested, false);
        refuseNodeState(real, requested);
        if (!Files.isRegularFile(real) && !isBlockDevice(real)) {
            throw new RefusedPathException("not a regular file or block device: " + requested);
        }
        return real;
    }

    /**
     * Resolves a path for a new volume: the file must not exist, and its parent's real path must lie under a root
     * (the parent directory is created if it lies under a root).
     */
    public Path resolveNew(String requested) throws RefusedPathException {
        Path candidate = candidate(requested);
        if (Files.exists(candidate, LinkOption.NOFOLLOW_LINKS)) {
            throw new RefusedPathException("already exists: " + requested);
        }
        Path parent = candidate.getParent();
        if (parent == null) {
            throw new RefusedPathException("no parent directory: " + requested);
        }
        Path existingAncestor = parent;
        while (existingAncestor != null && !Files.exists(existingAncestor)) {
            existingAncestor = existingAncestor.getParent();
        }
        if (existingAncestor == null) {
            throw new RefusedPathException("outside every export root: " + requested);
        }
        Path realAncestor;
        try {
            realAncestor = existingAncestor.toRealPath();
        } catch (IOException e) {
            throw new RefusedPathException("cannot resolve " + existingAncestor + ": " + e.getMessage());
        }
        requireInside(realAncestor, requested, true);
        Path target = realAncestor.resolve(existingAncestor.relativize(candidate));
        refuseNodeState(target, requested);
        return target;
    }

    /** Whether {@code real} is one of the node's own state files (not a volume, whatever its root says). */
    public boolean isNodeState(Path real) {
        return stateDir.isPresent() && NodeStateFiles.isStateFile(stateDir.get(), real);
    }

    private void refuseNodeState(Path real, String requested) throws RefusedPathException {
        if (isNodeState(real)) {
            throw new RefusedPathException("not a volume: " + requested + " is node state (" + real.getFileName()
                    + " in the node's data directory)");
        }
    }

    /**
     * Opens the store at {@code real} (a path {@link #resolveExisting} returned) relative to its root, without
     * following anything out of the root, whatever changed since the check. The store is locked (exclusive when
     * read-write, shared when read-only).
     */
    public FileBackingStore open(Path real, boolean readOnly) throws IOException {
        Path root = rootOf(real);
        return FileBackingStore.openBeneath(root, root.relativize(real), readOnly, false);
    }

    /**
     * Creates a sparse volume of {@code size} bytes at {@code target} (a path {@link #resolveNew} returned) and
     * opens it read-write: created relative to the root's descriptor, no component followed if it is a symlink.
     */
    public FileBackingStore create(Path target, long size) throws IOException {
        Path root = rootOf(target);
        return FileBackingStore.createBeneath(root, root.relativize(target), size);
    }

    private Path rootOf(Path real) throws IOException {
        for (Path root : roots) {
            if (real.isAbsolute() && real.startsWith(root) && !real.equals(root)) {
                return root;
            }
        }
        throw new IOException("outside every export root: " + real);
    }

    private Path candidate(String requested) throws RefusedPathException {
        if (roots.isEmpty()) {
            throw new RefusedPathException("this node has no export roots (weft.storage.export-roots is empty)");
        }
        if (requested == null || requested.isBlank()) {
            throw new RefusedPathException("empty path");
        }
        if (requested.indexOf('\0') >= 0) {
            throw new RefusedPathException("path contains a NUL byte");
        }
        Path p = Path.of(requested);
        for (Path segment : p) {
            if (segment.toString().equals("..")) {
                throw new RefusedPathException("'..' is not allowed in a backing store path: " + requested);
            }
        }
        return p.isAbsolute() ? p.normalize() : roots.get(0).resolve(p).normalize();
    }

    private void requireInside(Path real, String requested, boolean rootItselfAllowed)
            throws RefusedPathException {
        for (Path root : roots) {
            if (real.startsWith(root) && (rootItselfAllowed || !real.equals(root))) {
                return;
            }
        }
        throw new RefusedPathException("outside every export root: " + requested + " (resolves to " + real + ")");
    }

    private static boolean isBlockDevice(Path real) {
        // Files.isRegularFile is false for /dev/... nodes; a raw device is served when it lies under a root.
        return !Files.isDirectory(real) && real.startsWith("/dev/");
    }
}
