# One fio --output-format=json result (one job) -> one flat record for runs.jsonl.
# Arguments: $case $instance (target/transport) $pass (number) $extra (object merged in: wall time, CPU figures).
def size_bytes:
  ascii_downcase | capture("^(?<n>[0-9]+)(?<u>[kmg]?)") as $m
  | ($m.n | tonumber) * ({"": 1, "k": 1024, "m": 1048576, "g": 1073741824}[$m.u]);

.jobs[0] as $job
| ((."global options" // {}) + ($job."job options" // {})) as $opt
# the measured direction is the one that moved bytes (each case is pure read or pure write)
| (if ($job.write.io_bytes // 0) > ($job.read.io_bytes // 0) then $job.write else $job.read end) as $dir
| {
    case: $case,
    instance: $instance,
    pass: $pass,
    rw: $opt.rw,
    bs_bytes: ($opt.bs | size_bytes),
    iodepth: ($opt.iodepth // "1" | tonumber),
    numjobs: ($opt.numjobs // "1" | tonumber),
    error: $job.error,
    iops: (($job.read.iops // 0) + ($job.write.iops // 0)),
    bw_bytes: (($job.read.bw_bytes // 0) + ($job.write.bw_bytes // 0)),
    lat_mean_ns: $dir.lat_ns.mean,
    lat_p50_ns: $dir.lat_ns.percentile["50.000000"],
    lat_p99_ns: $dir.lat_ns.percentile["99.000000"],
    runtime_ms: $dir.runtime
  }
| . + $extra
