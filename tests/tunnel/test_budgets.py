"""The boot budget holds its phases: directory, entry gateway, exit walk, in turn."""

from __future__ import annotations

from smolmix_cli.bootstrap import DIRECTORY_TIMEOUT
from smolmix_cli.mixnet.client.client import (
    GATEWAY_ATTEMPT_TIMEOUT,
    GATEWAY_BUDGET,
    MAX_GATEWAY_CANDIDATES,
    ClientConfig,
)
from smolmix_cli.options import DEFAULT_BOOT_TIMEOUT
from smolmix_cli.tunnel.options import TunnelOptions


def test_the_phase_budgets_fit_in_the_default_boot_budget() -> None:
    options = TunnelOptions()
    assert options.exit_phase_budget() == 36.0  # 15 exits, 5 at once, 12 s per attempt
    config = ClientConfig()
    assert config.gateway_budget == GATEWAY_BUDGET
    assert config.gateway_attempt_timeout == GATEWAY_ATTEMPT_TIMEOUT < GATEWAY_BUDGET
    # the directory: the topology, then the described and skimmed reads of exit discovery
    directory = 2 * DIRECTORY_TIMEOUT
    assert directory + GATEWAY_BUDGET + options.exit_phase_budget() < DEFAULT_BOOT_TIMEOUT


def test_the_bounds_make_a_failed_boot_rare_on_a_mainnet_like_network() -> None:
    """Acceptance: 60 % dead exits and 40 % dead entry gateways, 50 cold boots in a row."""
    options = TunnelOptions()
    no_exit = 0.6**options.exit_attempts
    no_gateway = 0.4**MAX_GATEWAY_CANDIDATES
    assert 50 * (no_exit + no_gateway) < 0.05
