"""Property tests: the directory router and the page collector only ever fail in their own way."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from smolmix_cli.mixnet.directory.api_urls import DirectoryUnavailable
from smolmix_cli.mixnet.directory.nym_api import PageCollector
from tests.testnet.directory_data import probe_like_state

STATE = probe_like_state(per_layer=2)
PATHS = [
    "/api/v2/unstable/nym-nodes/skimmed",
    "/api/v2/unstable/nym-nodes/skimmed/mixnodes/active",
    "/api/v2/unstable/nym-nodes/skimmed/entry-gateways",
    "/api/v2/nym-nodes/described",
    "/api/v1/nym-nodes/rewarded-set",
]


@given(
    method=st.sampled_from(["GET", "HEAD", "OPTIONS", "POST", "DELETE", "get", ""]),
    path=st.one_of(st.sampled_from(PATHS), st.text(max_size=60)),
    query=st.text(max_size=60),
)
@settings(max_examples=300)
def test_router_always_answers_json_or_nothing(method: str, path: str, query: str) -> None:
    answer = STATE.answer(method, f"{path}?{query}")
    assert answer.status in (200, 204, 400, 404, 405)
    assert dict(answer.headers)["Access-Control-Allow-Origin"] == "*"
    if answer.body:
        json.loads(answer.body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
@settings(max_examples=300)
def test_page_collector_rejects_any_json_with_its_own_error(body: Any) -> None:
    collector = PageCollector("http://x/")
    try:
        more = collector.add(body)
    except DirectoryUnavailable as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(more, bool) and len(collector.pages) == 1


@given(st.integers(min_value=1, max_value=9))
def test_collector_over_real_pages_gets_every_node_once(per_page: int) -> None:
    collector = PageCollector("http://x/")
    page = 0
    while collector.add(
        STATE.skimmed_page(STATE.nodes, {"page": [str(page)], "per_page": [str(per_page)]})
    ):
        page += 1
        assert page < 100
    assert sorted(n.node_id for n in collector.nodes) == sorted(n.node_id for n in STATE.nodes)
