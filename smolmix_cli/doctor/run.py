"""The anyio shell of `smolmix doctor`: directory, one gateway, then a few exits at a time.

Each phase fills its finding and a failing phase ends the run with the findings so far,
so the report always says how far it got. The whole run stays inside `budget`; exits
are probed `width` at a time in the tunnel's own performance-weighted order, each
within `probe_timeout`. Keys are ephemeral and nothing is written to the data dir: a
doctor run changes nothing a later `fetch` sees.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio

from smolmix_cli import __version__
from smolmix_cli.bootstrap import directory_client, start_client
from smolmix_cli.config import Network
from smolmix_cli.doctor.census import count_described, count_skimmed, count_topology, usable_exits
from smolmix_cli.doctor.probe import HealthProbe, stream_of
from smolmix_cli.doctor.report import (
    ANSWER_ERROR,
    ANSWER_NO_ROUTE,
    ANSWER_NONE,
    DirectoryFinding,
    DoctorReport,
    ExitProbe,
    GatewayAttempt,
)
from smolmix_cli.errors_map import classify
from smolmix_cli.exit_codes import ExitCode
from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.base58 import b58encode
from smolmix_cli.mixnet.client.client import ClientConfig, MixnetClient
from smolmix_cli.mixnet.client.core import ClientError
from smolmix_cli.mixnet.directory.nym_api import PATH_ALL_SKIMMED
from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.topology.topology import NO_USABLE_ROUTE, NoUsableRoute, Topology
from smolmix_cli.tunnel.exits import ExitCandidate, exit_order, read_described

Phase = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class DoctorSettings:
    exits: int = 10  # exits probed at most
    width: int = 5  # probes at a time
    probe_timeout: float = 10.0  # seconds one exit has to answer
    budget: float = 90.0  # seconds for the whole run
    directory_timeout: float = 30.0  # the directory reads, all URLs together
    gateway_timeout: float = 30.0  # connecting one gateway (failover included)
    ipr: str | None = None  # probe only this exit (--ipr)


async def run_doctor(
    network: Network,
    config: ClientConfig,
    settings: DoctorSettings,
    *,
    on_phase: Phase | None = None,
    rng: random.Random | None = None,
) -> DoctorReport:
    """Every finding the run could make within its budget (it raises only on a bug)."""
    say = on_phase if on_phase is not None else (lambda _text: None)
    rng = rng if rng is not None else random.SystemRandom()
    directory = DirectoryFinding([api.url for api in network.api_urls])
    report = DoctorReport(network.name, __version__, directory)
    deadline = anyio.current_time() + settings.budget

    def left(cap: float) -> float:
        return max(0.1, min(cap, deadline - anyio.current_time()))

    say("reading the directory")
    read = await _read_directory(network, directory, left(settings.directory_timeout))
    if read is None:
        return report
    topology, candidates = read
    say(f"directory: {topology.summary()}; connecting to the gateway")
    gateway = report.gateway
    gateway.attempted = True
    started = anyio.current_time()
    try:
        with anyio.fail_after(left(settings.gateway_timeout)) as phase:
            async with start_client(
                network, topology, _bounded(config, left(settings.gateway_timeout)), on_phase=say
            ) as client:
                phase.deadline = math.inf
                gateway.seconds = anyio.current_time() - started
                _gateway_up(report, client)
                probes = _choose(candidates, settings, rng)
                report.exits.candidates = len(candidates)
                report.exits.pinned = settings.ipr is not None
                report.exits.timeout = settings.probe_timeout
                report.exits.width = settings.width
                say(f"probing {len(probes)} of {len(candidates)} exits")
                await _probe_all(client, topology, probes, settings, deadline, rng, report)
    except (TimeoutError, MixnetError, OSError) as exc:
        if gateway.ok:
            raise  # pragma: no cover - the probes catch their own failures
        gateway.seconds = anyio.current_time() - started
        if isinstance(exc, TimeoutError):
            gateway.error = f"none connected within {settings.gateway_timeout:g} s"
        else:
            gateway.error = str(classify(exc))
    return report


def _bounded(config: ClientConfig, seconds: float) -> ClientConfig:
    return dataclasses.replace(config, gateway_budget=min(config.gateway_budget, seconds))


async def _read_directory(
    network: Network, finding: DirectoryFinding, timeout: float
) -> tuple[Topology, list[ExitCandidate]] | None:
    """The topology and the usable exits, counting everything on the way; None: failed."""
    api = directory_client(network, timeout)
    started = anyio.current_time()
    try:
        with anyio.fail_after(timeout):
            topology = await api.topology()
            count_topology(finding, topology)
            performance = count_skimmed(finding, await api.get_node_pages(PATH_ALL_SKIMMED))
            described = await read_described(api)
            count_described(finding, described)
            candidates = usable_exits(finding, described, performance, topology).candidates
            if not topology.is_usable:
                raise NoUsableRoute(NO_USABLE_ROUTE)
    except TimeoutError:
        finding.error = f"no complete answer within {timeout:g} s"
        finding.code = ExitCode.NETWORK_UNREACHABLE
        return None
    except (MixnetError, OSError) as exc:
        error = classify(exc)
        finding.error, finding.code = str(error), error.code
        return None
    finally:
        finding.seconds = anyio.current_time() - started
    finding.ok = True
    return topology, candidates


def _gateway_up(report: DoctorReport, client: MixnetClient) -> None:
    gateway = report.gateway
    gateway.ok = True
    gateway.identity = b58encode(client.gateway.identity)
    gateway.tried = [GatewayAttempt(name, result) for name, result in client.gateways_tried]
    connected = [t.gateway for t in gateway.tried if t.result == "connected"]
    if connected and " at " in connected[-1]:
        gateway.url = connected[-1].split(" at ", 1)[1]
    gateway.protocol_version = client.gateway_protocol_version


def _choose(
    candidates: list[ExitCandidate], settings: DoctorSettings, rng: random.Random
) -> list[tuple[ExitCandidate, ExitProbe]]:
    """The exits to probe: the pinned one, else the first `exits` of the tunnel's order."""
    if settings.ipr is not None:
        pinned = Recipient.parse(settings.ipr)
        listed = [c for c in candidates if c.ipr == pinned]
        order = listed[:1] or [ExitCandidate(pinned)]
    else:
        order = exit_order(candidates, rng)[: max(0, settings.exits)]
    return [
        (c, ExitProbe(c.key, b58encode(c.ipr.gateway), c.build_version, c.performance))
        for c in order
    ]


async def _probe_all(
    client: MixnetClient,
    topology: Topology,
    probes: list[tuple[ExitCandidate, ExitProbe]],
    settings: DoctorSettings,
    deadline: float,
    rng: random.Random,
    report: DoctorReport,
) -> None:
    waiting: dict[int, tuple[HealthProbe, anyio.Event, list[float]]] = {}
    limiter = anyio.CapacityLimiter(max(1, settings.width))
    started = anyio.current_time()

    async def dispatch() -> None:
        while True:
            try:
                message = await client.receive()
            except ClientError:
                return  # the gateway is gone: the probes left run out their time
            found = stream_of(message.data)
            entry = waiting.get(found[0]) if found is not None else None
            if found is None or entry is None:
                continue
            probe, done, answered_at = entry
            if not done.is_set() and probe.on_reply(found[1]):
                answered_at.append(anyio.current_time())
                done.set()

    async def one(candidate: ExitCandidate, finding: ExitProbe) -> None:
        async with limiter:
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                return
            try:
                topology.node_by_identity(candidate.ipr.gateway)
            except MixnetError:
                finding.answer, finding.detail = ANSWER_NO_ROUTE, "gateway not in the topology"
                return
            probe = HealthProbe(rng)
            done, answered_at = anyio.Event(), list[float]()
            waiting[probe.stream_id] = (probe, done, answered_at)
            sent = anyio.current_time()
            try:
                for out in probe.messages(datetime.now(UTC)):
                    await client.send(candidate.ipr, out.payload, reply_surbs=out.reply_surbs)
            except (MixnetError, ValueError) as exc:
                finding.answer, finding.detail = ANSWER_ERROR, str(exc)[:80]
                return
            timeout = min(settings.probe_timeout, remaining)
            with anyio.move_on_after(timeout):
                await done.wait()
            answer = probe.answer
            if answer is None or not answered_at:
                finding.answer, finding.detail = ANSWER_NONE, f"no reply within {timeout:.3g} s"
                return
            finding.answer, finding.detail = answer.kind, answer.detail
            finding.routable = answer.routable
            finding.rtt_ms = (answered_at[0] - sent) * 1000.0

    report.exits.probes = [finding for _c, finding in probes]
    async with anyio.create_task_group() as tg:
        tg.start_soon(dispatch)
        with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
            async with anyio.create_task_group() as each:
                for candidate, finding in probes:
                    each.start_soon(one, candidate, finding)
        tg.cancel_scope.cancel()
    report.exits.seconds = anyio.current_time() - started
