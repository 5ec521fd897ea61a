"""The report as one screen of text: a few labelled lines, then one row per probed exit.

Long lists are cut to their largest entries (mainnet has dozens of builds and
hundreds of exits); `--json` has every count.
"""

from __future__ import annotations

from collections import Counter

from smolmix_cli.doctor.report import ANSWER_NOT_PROBED, DoctorReport, ExitProbe

LABEL = 10  # width of the left column
TOP_BUILDS = 4
TOP_REASONS = 4


def render(report: DoctorReport) -> list[str]:
    d, g, e = report.directory, report.gateway, report.exits
    lines = [f"smolmix doctor {report.version} on {report.network}"]
    pad = " " * (LABEL + 1)

    def row(label: str, text: str) -> None:
        lines.append(f"{label:<{LABEL}} {text}")

    urls = ", ".join(d.urls)
    if not d.ok and not d.nodes and not d.topology_nodes:
        row("directory", f"FAILED after {d.seconds:.1f} s: {d.error} ({urls})")
    else:
        roles = _counts(d.by_role, len(d.by_role))
        row("directory", f"{d.nodes} nodes in {d.seconds:.1f} s from {urls}")
        if roles:
            lines.append(f"{pad}roles: {roles}")
        if d.unparsed:
            lines.append(f"{pad}unreadable: {_counts(d.unparsed, TOP_REASONS)}")
        if d.builds:
            lines.append(f"{pad}builds: {_counts(d.builds, TOP_BUILDS, named_first=True)}")
        if d.declared:
            lines.append(f"{pad}declared: {_counts(d.declared, len(d.declared))}")
        layers = "/".join(str(n) for n in d.layers)
        topology = f"{d.topology_nodes} usable, layers {layers}, {d.gateways} gateways"
        if d.topology_skipped:
            topology += f"; skipped {_counts(d.topology_skipped, TOP_REASONS)}"
        lines.append(f"{pad}topology: {topology}")
        exits = f"{d.exits_usable} usable of {d.described} described"
        if d.exits_skipped:
            exits += f"; skipped {_counts(d.exits_skipped, TOP_REASONS)}"
        lines.append(f"{pad}exits: {exits}")
        if not d.ok:
            lines.append(f"{pad}FAILED: {d.error}")
    if g.attempted:
        if g.ok:
            version = f"protocol v{g.protocol_version}" if g.protocol_version else "protocol ?"
            row("gateway", f"{g.identity} {version} in {g.seconds:.1f} s")
            if g.url:
                lines.append(f"{pad}at {g.url}")
        else:
            row("gateway", f"FAILED after {g.seconds:.1f} s: {g.error}")
        for attempt in g.tried:
            if attempt.result != "connected":
                lines.append(f"{pad}skipped {attempt.gateway}: {attempt.result}")
    if g.ok:
        probed = sum(p.answer != ANSWER_NOT_PROBED for p in e.probes)
        source = "the pinned exit (--ipr)" if e.pinned else f"{len(e.probes)} of {e.candidates}"
        row(
            "exits",
            f"{e.answered} of {probed} answered (IPR v9 Health to {source}, "
            f"{e.width} at a time, {e.timeout:g} s each; {e.seconds:.1f} s)",
        )
        if e.probes:
            lines.append(f"  {'exit gateway':<44}  {'build':<10} {'perf':>4}  {'rtt':>8}  answer")
            lines += [_probe_row(p) for p in e.probes]
    code, message = report.verdict
    row("result", f"{'ok' if code == 0 else 'FAILED'}: {message} (exit {int(code)})")
    return lines


def _probe_row(p: ExitProbe) -> str:
    rtt = f"{p.rtt_ms:.0f} ms" if p.rtt_ms is not None else "-"
    answer = p.answer
    if p.detail:
        answer += f": {p.detail}"
    if p.routable is not None:
        answer += " (routable)" if p.routable else " (not routable)"
    build = (p.build or "?")[:10]
    return f"  {p.gateway:<44}  {build:<10} {p.performance:>3}%  {rtt:>8}  {answer}"


def _counts(counter: Counter[str], top: int, *, named_first: bool = False) -> str:
    common = counter.most_common()
    shown = ", ".join(f"{what}: {n}" if named_first else f"{n} {what}" for what, n in common[:top])
    rest = common[top:]
    if rest:
        total = sum(n for _w, n in rest)
        shown += (
            f", {len(rest)} others: {total}" if named_first else f", {total} in {len(rest)} others"
        )
    return shown
