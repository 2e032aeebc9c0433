# Aggregates runs.jsonl into the report. Run with:
#   jq -n -r --slurpfile runs runs.jsonl --slurpfile targets targets.jsonl --slurpfile cases cases.jsonl
#      --arg mode tables|chart-data [--arg case ID] -f summarize.jq
# targets.jsonl: one object per target instance in report order:
#   {id, name, transport, status: "ok"|"unavailable"|"failed", reason, baseline, twohop, inproc, local}
#   baseline = id of the instance to compare against (nbdkit over the same transport), twohop = nbdkit two-hop over
#   the same transport (the peer of a client node in front of a storage node), inproc = single-node Weft over the
#   same transport (the peer of weft-cxl and weft-rdma; null for the others), local = the local IO id.
# The × two-hop and × weft columns appear only when their reference target was measured in the run.
# Ratios are medians of per-pass ratios (target / reference measured in the same pass), so slow drifts of a shared
# machine cancel out; absolute figures are medians over passes with min–max beside them.

def median: sort | if length == 0 then null
  elif length % 2 == 1 then .[(length - 1) / 2]
  else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def round(n): . * pow(10; n) | round / pow(10; n);
def fixed(n): round(n) | tostring | if n > 0 and (contains(".") | not) then . + "." + ("0" * n)
  elif n > 0 then (split(".") as $p | $p[0] + "." + ($p[1] + "0" * n)[0:n]) else . end;
def human_iops: if . == null then "—" elif . >= 1e6 then (. / 1e6 | fixed(2)) + " M"
  elif . >= 1e3 then (. / 1e3 | fixed(1)) + " k" else (. | fixed(0)) end;
def mib_s: if . == null then "—" else (. / 1048576 | fixed(0)) end;
def usec: if . == null then "—" elif . >= 1e6 then (. / 1e6 | fixed(1)) + " ms"
  elif . >= 1e5 then (. / 1e3 | fixed(0)) + " µs" else (. / 1e3 | fixed(1)) + " µs" end;
def ratio: if . == null then "—" else (fixed(2)) + "×" end;
def pct: if . == null then "—" else (fixed(0)) + " %" end;
def md_escape: gsub("\\|"; "\\|");

# the figure a case is judged by: bandwidth for large blocks, IOPS otherwise
def metric($bs): if $bs >= 65536 then .bw_bytes else .iops end;
# the server's CPU time per request in µs: (CPU % of one core / 100) core-seconds per second / requests per second
def cpu_per_req: if .server_cpu_pct == null or (.iops // 0) <= 0 then null else .server_cpu_pct * 10000 / .iops end;
def cpu_us: if . == null then "—" else (fixed(1)) + " µs" end;

($runs | map(select(.error == 0))) as $ok
| def runs_of($case; $id): $ok | map(select(.case == $case and .instance == $id));
  # median over passes of (f of this target's run / f of the reference's run in the same pass)
  def pass_ratio_of(f; $case; $id; $ref):
    if $ref == null or $ref == $id then null else
      (runs_of($case; $ref) | map({key: (.pass | tostring), value: .}) | from_entries) as $r
      | [runs_of($case; $id)[] | f as $mine | $r[.pass | tostring] as $b
         | select($b != null and $mine != null and (($b | f) // 0) > 0)
         | $mine / ($b | f)] | median
    end;
  def pass_ratio($case; $id; $ref): pass_ratio_of(metric(.bs_bytes); $case; $id; $ref);
  def pass_cpu_ratio($case; $id; $ref): pass_ratio_of(cpu_per_req; $case; $id; $ref);
  def stats($case; $t):
    runs_of($case; $t.id) as $rs
    | ($rs | map(metric(.bs_bytes))) as $m
    | {
        n: ($rs | length),
        failed: ($runs | map(select(.case == $case and .instance == $t.id and .error != 0)) | length),
        big: (($rs[0].bs_bytes // 0) >= 65536),
        median: ($m | median), min: ($m | min), max: ($m | max),
        iops: ($rs | map(.iops) | median),
        bw: ($rs | map(.bw_bytes) | median),
        p50: ($rs | map(.lat_p50_ns) | median),
        p99: ($rs | map(.lat_p99_ns) | median),
        cpu: ($rs | map(.server_cpu_pct | select(. != null)) | median),
        cpu_req: ($rs | map(cpu_per_req | select(. != null)) | median),
        cpu_req_vs_base: pass_cpu_ratio($case; $t.id; $t.baseline),
        cpu_req_vs_twohop: pass_cpu_ratio($case; $t.id; $t.twohop),
        vs_base: pass_ratio($case; $t.id; $t.baseline),
        vs_twohop: pass_ratio($case; $t.id; $t.twohop),
        vs_inproc: pass_ratio($case; $t.id; $t.inproc),
        vs_local: pass_ratio($case; $t.id; $t.local)
      };
  # optional ratio columns: present when some measured target is the reference of another one
  def measured($prefix): [$targets[] | select(.status == "ok" and (.id | startswith($prefix)))] | length > 0;
  (measured("nbdkit-two-hop/")) as $has_twohop
  | (measured("weft/") and (measured("weft-cxl/") or measured("weft-rdma/"))) as $has_inproc
  | (if $has_twohop then " × two-hop |" else "" end) as $twohop_head
  | (if $has_twohop then " CPU/req × two-hop |" else "" end) as $cpu_twohop_head
  | (if $has_inproc then " × weft |" else "" end) as $inproc_head
  | ((if $has_twohop then "--:|" else "" end) + (if $has_inproc then "--:|" else "" end)) as $extra_rule
  | (if $has_twohop then "--:|" else "" end) as $cpu_rule
  | def cpu_twohop_cell($s): if $has_twohop then " \($s.cpu_req_vs_twohop | ratio) |" else "" end;
  def extra_cells($s): (if $has_twohop then " \($s.vs_twohop | ratio) |" else "" end)
      + (if $has_inproc then " \($s.vs_inproc | ratio) |" else "" end);

if $mode == "tables" then
  $cases[] as $c
  | ([$runs[] | select(.case == $c.id) | .bs_bytes] | first // 4096) as $bs
  | (if $bs >= 65536 then "MiB/s" else "IOPS" end) as $unit
  | "### \($c.title)\n\nJob file: `bench/fio/\($c.id).fio`. Median of \($c.passes) passes; ratios are medians of per-pass ratios.\n",
    (if $unit == "MiB/s"
     then "| target | MiB/s | min–max | IOPS | lat p50 | lat p99 | server CPU | CPU/req | CPU/req × nbdkit |\($cpu_twohop_head) × nbdkit |\($twohop_head)\($inproc_head) × local |"
     else "| target | IOPS | min–max | lat p50 | lat p99 | server CPU | CPU/req | CPU/req × nbdkit |\($cpu_twohop_head) × nbdkit |\($twohop_head)\($inproc_head) × local |" end),
    (if $unit == "MiB/s" then "|---|--:|--:|--:|--:|--:|--:|--:|--:|\($cpu_rule)--:|\($extra_rule)--:|"
     else "|---|--:|--:|--:|--:|--:|--:|--:|\($cpu_rule)--:|\($extra_rule)--:|" end),
    ($targets[] as $t
     | if $t.status != "ok" then
         "| \($t.name) | \(if $t.status == "unavailable" then "not available" else "failed to start" end): \($t.reason | md_escape) |" 
       else
         stats($c.id; $t) as $s
         | (if $s.n == 0 then "no successful run (\($s.failed) failed)"
            elif $unit == "MiB/s" then "\($s.median | mib_s) | \($s.min | mib_s)–\($s.max | mib_s) | \($s.iops | human_iops)"
            else "\($s.median | human_iops) | \($s.min | human_iops)–\($s.max | human_iops)" end) as $head
         | if $s.n == 0 then "| \($t.name) | \($head) |"
           else "| \($t.name)\(if $s.failed > 0 then " (\($s.failed) of \($s.n + $s.failed) runs failed)" else "" end) | \($head) | \($s.p50 | usec) | \($s.p99 | usec) | \($s.cpu | pct) | \($s.cpu_req | cpu_us) | \($s.cpu_req_vs_base | ratio) |\(cpu_twohop_cell($s)) \($s.vs_base | ratio) |\(extra_cells($s)) \($s.vs_local | ratio) |" end
       end),
    ""
elif $mode == "chart-data" then
  # one row per available instance except local IO: label, median, min, max, colour index
  ([$runs[] | select(.case == $case) | .bs_bytes] | first // 4096) as $bs
  | $targets | map(select(.status == "ok" and .transport != "file")) | to_entries[]
  | .key as $i | .value as $t | stats($case; $t) as $s
  | select($s.n > 0)
  | (if $bs >= 65536 then 1 / 1048576 else 1 / 1000 end) as $scale
  | "\"\($t.name)\"\t\($s.median * $scale)\t\($s.min * $scale)\t\($s.max * $scale)\t\($i + 1)"
elif $mode == "ceiling" then
  # the local IO figure for one case, in the chart's unit
  ([$runs[] | select(.case == $case) | .bs_bytes] | first // 4096) as $bs
  | ($targets | map(select(.status == "ok" and .transport == "file")) | first) as $t
  | if $t == null then "" else stats($case; $t) as $s
    | if $s.n == 0 then "" elif $bs >= 65536 then "\($t.name): \($s.median | mib_s) MiB/s"
      else "\($t.name): \($s.median | human_iops) IOPS" end end
elif $mode == "idle" then
  # CPU each server burnt while the other targets were measured (a spinning idle loop shows up here)
  $targets[] | select(.status == "ok" and .transport != "file") | .id as $id
  | ([$runs[] | select(.instance != $id) | .others_cpu_pct[$id] | select(. != null)]) as $v
  | "\($id)\t\(if ($v | length) == 0 then "—" else ($v | add / length | fixed(1)) + " %" end)\t\(if ($v | length) == 0 then "—" else ($v | max | fixed(1)) + " %" end)"
else error("unknown mode \($mode)") end
