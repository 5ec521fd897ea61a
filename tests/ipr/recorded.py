"""Reading the official client's IPR recordings: field tables and their values."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Any

from smolmix_cli.ipr.lp_frame import LpFrame
from smolmix_cli.mixnet.message.message import RepliableMessage, decode_message
from tests.vectors import h, load_vector

EXCHANGE: dict[str, Any] = load_vector("official-client", "ipr-exchange.json")
MESSAGES: dict[str, Any] = load_vector("official-client", "ipr-messages.json")
STAGE1 = EXCHANGE["stage1_connect_messages"]
STAGE2 = EXCHANGE["stage2_connect_reply"]
STAGE3: list[dict[str, Any]] = EXCHANGE["stage3_ip_exchange"]
V10_VARIANT = EXCHANGE["variants"]["v10"]
REQUEST_ID_PLACEHOLDER = "<request id>"


def value_of(recorded: Any) -> Any:
    """The recorded `value` of a field as a comparable Python value.

    Recorded forms: ints; "N = Name" (an enum index); "0x…" (a hex integer, maybe with
    a note in brackets); "None"; "UTC" (offset 0, 0, 0); dotted or colon IP addresses.
    """
    if not isinstance(recorded, str):
        return recorded
    text = recorded.strip()
    head = text.split(" ")[0]
    if " = " in text and head.isdigit():
        return int(head)
    if head.startswith("0x"):
        return int(head, 16)
    if text == "None":
        return None
    if text == "UTC":
        return (0, 0, 0)
    if text.count(".") == 3:
        return IPv4Address(text)
    if ":" in text:
        return IPv6Address(text)
    return text


def fields_by_name(fields: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["field"]: f for f in fields}


def check_slices(encoded: bytes, fields: list[dict[str, Any]]) -> None:
    """Every recorded field's bytes sit at its offset in `encoded`, and they tile it."""
    end = 0
    for field in fields:
        chunk = encoded[field["offset"] : field["offset"] + field["len"]]
        assert len(chunk) == field["len"], field
        if "hex" in field:
            assert chunk == h(field["hex"]), field
        assert field["offset"] == end, f"gap before {field['field']}"
        end = field["offset"] + field["len"]
    assert end == len(encoded), "fields do not cover the encoding"


def sender_tag_and_frame(nym_message_hex: str) -> tuple[bytes, int, LpFrame]:
    """From a recorded repliable NymMessage: its sender tag, SURB count and LP frame."""
    message = decode_message(h(nym_message_hex))
    assert isinstance(message, RepliableMessage)
    return message.sender_tag, len(message.reply_surbs), LpFrame.decode(message.data)


def with_request_id(template_hex: str, request_id: int) -> bytes:
    """Fill a recorded `…fd<request id>…` template with a u64 id in its 8-byte form."""
    assert REQUEST_ID_PLACEHOLDER in template_hex
    return h(template_hex.replace(REQUEST_ID_PLACEHOLDER, request_id.to_bytes(8, "big").hex()))
