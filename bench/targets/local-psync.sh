# Target: local IO on the backing file itself with fio's psync engine (pread/pwrite, one at a time) — the ceiling that
# no NBD server can beat on the same machine. psync has no queue: fio caps iodepth at 1, so the qd32 cases measure
# the same single-threaded loop (that is the limit a one-connection server has to approach).
local_psync_available() { return 0; }
local_psync_version() { echo "fio $(fio --version 2>/dev/null) psync engine, no server"; }
local_psync_transports() { echo file; }
local_psync_start() { # TRANSPORT WORKDIR FILE
    TARGET_ENGINE=psync
    TARGET_OPTION="filename=$3"
}
