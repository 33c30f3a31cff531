"""The campaign's printed verdict: clips per source kind, stage latencies, resources, faults."""

from __future__ import annotations

from bench._support import percentile
from bench.soak.campaign import CampaignResult
from bench.soak.load import SourceKind
from bench.soak.verify import ClipVerdict, resource_summary, stage_latencies

_COLUMNS = ("produced", "uploaded", "analyzed", "alerted", "errors", "lost")


def _row(label: str, verdicts: list[ClipVerdict]) -> str:
    counts = (
        len(verdicts),
        sum(v.stored > 0 for v in verdicts),
        sum(v.state is not None and v.state.analysis_result is not None for v in verdicts),
        sum(v.alerts > 0 for v in verdicts),
        sum(v.state is not None and v.state.status == "error" for v in verdicts),
        sum(v.lost for v in verdicts),
    )
    return f"  {label:<8}" + "".join(f"{count:>10}" for count in counts)


def _spool_line(result: CampaignResult) -> str:
    spool = result.spool
    allowed = (spool.cap + spool.allowance) / 1e6
    return (
        f"spool: cap {spool.cap / 1e6:.1f} MB; peak during the VLM outage "
        f"{spool.peak_in_vlm_outage / 1e6:.1f} MB (allowed {allowed:.1f} with clips in "
        f"flight); at the end {spool.at_end / 1e6:.1f} MB; over-limit reports "
        f"{spool.reported_over_limit}: {'held' if spool.held else 'NOT HELD'}"
    )


def render(result: CampaignResult) -> str:
    outcome = result.outcome
    lines = ["clips", "  " + " " * 8 + "".join(f"{name:>10}" for name in _COLUMNS)]
    for kind in SourceKind:
        lines.append(_row(kind, [v for v in outcome.verdicts if v.clip.kind == kind]))
    lines.append(_row("total", outcome.verdicts))
    if outcome.unexpected_objects:
        lines.append(f"  stored, never produced (duplicates): {outcome.unexpected_objects}")
    for verdict in outcome.unfinished()[:20]:
        lines.append(f"  LOST {verdict.clip.clip_id}: {', '.join(verdict.problems)}")
    lines.append("stage latency (s, from clip_states stage timestamps)")
    produced = {v.clip.clip_id for v in outcome.verdicts}
    states = [s for clip_id, s in outcome.states.items() if clip_id in produced]
    for stage, values in stage_latencies(states).items():
        if values:
            lines.append(
                f"  {stage:<8} p50 {percentile(values, 50):7.2f}  p95 {percentile(values, 95):7.2f}"
                f"  (n={len(values)})"
            )
    kinds = sorted(result.faults.kinds())
    lines += [
        f"faults injected ({len(result.faults.windows)}): {', '.join(kinds) or 'none'}",
        f"local copies pruned after upload: {result.pruned}; deleted before upload: "
        f"{result.deleted_early or 'none'}",
        _spool_line(result),
        f"resources: {resource_summary(result.process.samples)}; growth: {result.growth or 'none'}",
        f"process starts: {result.process.starts}; exit code on SIGTERM: {result.exit_code}; "
        f"leftover processes: {result.leftover_processes or 'none'}",
        f"secrets leaked: {result.leaks or 'none'}",
        f"drain: {result.drain_s:.0f} s; " + "; ".join(result.notes),
        f"VERDICT: {'PASS' if result.ok else 'FAIL'} (lost {outcome.lost})",
    ]
    return "\n".join(lines)
