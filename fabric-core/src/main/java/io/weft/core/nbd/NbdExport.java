package io.weft.core.nbd;

import io.weft.core.io.BlockDevice;
import java.util.Objects;

/**
 * One named export of an {@link NbdServer}.
 *
 * @param name        the export name clients ask for (NBD_OPT_GO / EXPORT_NAME); non-empty, at most 4096 bytes UTF-8
 * @param description free text shown by NBD_INFO_DESCRIPTION and `nbdinfo --list`; may be empty
 * @param device      the device served; the server never closes it
 */
public record NbdExport(String name, String description, BlockDevice device) {
    public NbdExport {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(device, "device");
        description = description == null ? "" : description;
        if (name.isEmpty()) {
            throw new IllegalArgumentException("export name must not be empty");
        }
    }
}
