"""The directory client's sans-io answer decoding: gzip bodies, bounded (readiness row 6)."""

from __future__ import annotations

import gzip
import json
import socket
import zlib

import pytest

from smolmix_cli.mixnet.directory.api_urls import ApiUrl, DirectoryUnavailable, FailureKind
from smolmix_cli.mixnet.directory.nym_api import (
    LARGE_TIMEOUT,
    MAX_DECODED_BODY,
    PATH_ALL_SKIMMED,
    PATH_DESCRIBED,
    PATH_REWARDED_SET,
    NymApiClient,
    build_request,
    decode_answer,
    decode_body,
    interleave_families,
)

URL = "https://validator.nymtech.net/api/v2/nym-nodes/described"


def test_requests_ask_for_gzip() -> None:
    request = build_request(ApiUrl("https://validator.nymtech.net/api/"), PATH_DESCRIBED)
    assert (b"accept-encoding", b"gzip") in request.headers


def test_a_gzip_answer_is_decoded() -> None:
    value = {"data": [{"node_id": i} for i in range(500)], "pagination": {"total": 500}}
    body = gzip.compress(json.dumps(value).encode())
    assert decode_answer(URL, 200, body, "gzip") == value
    assert decode_answer(URL, 200, json.dumps(value).encode(), "") == value
    assert decode_body(URL, "identity", b"as is") == b"as is"
    # two gzip members back to back are one body (RFC 1952)
    assert decode_body(URL, "GZIP", gzip.compress(b"ab") + gzip.compress(b"cd")) == b"abcd"


@pytest.mark.parametrize(
    ("coding", "body", "words"),
    [
        ("gzip", b"\x1f\x8b\x08\x00not really gzip", "bad gzip"),
        ("gzip", gzip.compress(b"{}" * 1000)[:-12], "truncated"),
        ("gzip", gzip.compress(b"{}") + b"trailing junk", "bad gzip"),
        ("br", b"{}", "unsupported content encoding"),
    ],
)
def test_bad_gzip_bodies_are_malformed_answers(coding: str, body: bytes, words: str) -> None:
    with pytest.raises(DirectoryUnavailable) as info:
        decode_answer(URL, 200, body, coding)
    assert info.value.kind is FailureKind.MALFORMED
    assert words in str(info.value)


def test_a_decompression_bomb_is_refused_at_the_limit() -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1024 * 1024)
    bomb = b"".join(packer.compress(chunk) for _ in range(MAX_DECODED_BODY // len(chunk) + 1))
    bomb += packer.flush()
    assert len(bomb) < 200_000  # a small download that would be over 64 MiB in memory
    with pytest.raises(DirectoryUnavailable, match="64 MiB once decompressed") as info:
        decode_body(URL, "gzip", bomb)
    assert info.value.kind is FailureKind.MALFORMED
    # exactly at the limit is still an answer
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    at_limit = b"".join(packer.compress(chunk) for _ in range(MAX_DECODED_BODY // len(chunk)))
    assert len(decode_body(URL, "gzip", at_limit + packer.flush())) == MAX_DECODED_BODY


def test_large_lists_get_the_longer_timeout() -> None:
    client = NymApiClient([ApiUrl("https://validator.nymtech.net/api/")], timeout=10)
    assert client.timeout_for(PATH_DESCRIBED) == LARGE_TIMEOUT
    assert client.timeout_for(PATH_ALL_SKIMMED) == LARGE_TIMEOUT
    assert client.timeout_for(PATH_REWARDED_SET) == 10
    short = NymApiClient([ApiUrl("http://127.0.0.1:1/api/")], timeout=2, large_timeout=5)
    assert (short.timeout_for(PATH_DESCRIBED), short.timeout_for(PATH_REWARDED_SET)) == (5, 2)


def test_resolved_addresses_alternate_families_as_rfc_8305_orders_them() -> None:
    v4, v6 = socket.AF_INET, socket.AF_INET6
    resolved = [(v6, "2001:db8::1"), (v6, "2001:db8::2"), (v4, "192.0.2.1"), (v6, "2001:db8::1")]
    assert interleave_families(resolved) == ["2001:db8::1", "192.0.2.1", "2001:db8::2"]
    assert interleave_families([(v4, "192.0.2.1"), (v6, "2001:db8::1")]) == [
        "192.0.2.1",
        "2001:db8::1",
    ]
    assert interleave_families([]) == []
