# Target (opt-in): local IO with fio's libaio engine at the job's queue depth. On a buffered file (tmpfs, or a disk
# without O_DIRECT) Linux AIO completes inside io_submit, so it mostly measures submission batching; useful with
# --disk on a filesystem where you want to see a queued ceiling. Not in the default target list.
local_libaio_available() { return 0; }
local_libaio_version() { echo "fio $(fio --version 2>/dev/null) libaio engine, no server"; }
local_libaio_transports() { echo file; }
local_libaio_start() { # TRANSPORT WORKDIR FILE
    TARGET_ENGINE=libaio
    TARGET_OPTION="filename=$3"
}
