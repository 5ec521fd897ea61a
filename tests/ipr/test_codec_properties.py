"""Property tests and fuzzing of every IPR parser: round trips, and only our errors on garbage."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smolmix_cli.ipr import bincode
from smolmix_cli.ipr.bincode import Reader, Writer
from smolmix_cli.ipr.bundle import (
    LENGTH_PREFIX_SIZE,
    MAX_BUNDLE_SIZE,
    BundleDecoder,
    BundleEncoder,
    FragmentPacker,
    LossGate,
    decode_bundle,
    encode_bundle,
)
from smolmix_cli.ipr.errors import BincodeError, IprError, MalformedBundle, MalformedIprFrame
from smolmix_cli.ipr.lp_frame import LpFrame, is_stream_frame
from smolmix_cli.ipr.messages import IpPacketRequest, IpPacketResponse
from tests.fuzzing import scaled
from tests.ipr.strategies import frames, packets, requests, responses

EXAMPLES = settings(max_examples=scaled(300), deadline=None)
WIDTHS = (16, 32, 64, 128)

# --- bincode ------------------------------------------------------------------------------


@EXAMPLES
@given(st.sampled_from(WIDTHS), st.data())
def test_unsigned_varint_round_trip_and_narrowest_form(bits: int, data: st.DataObject) -> None:
    value = data.draw(st.integers(0, (1 << bits) - 1))
    w = Writer()
    w.uint(value, bits)
    encoded = w.getvalue()
    r = Reader(encoded)
    assert r.uint(bits) == value
    r.finish()
    expected_len = next(
        size
        for limit, size in (
            (bincode.SINGLE_BYTE_MAX + 1, 1),
            (1 << 16, 3),
            (1 << 32, 5),
            (1 << 64, 9),
            (1 << 128, 17),
        )
        if value < limit
    )
    assert len(encoded) == expected_len


@EXAMPLES
@given(st.sampled_from(WIDTHS), st.data())
def test_signed_zigzag_round_trip(bits: int, data: st.DataObject) -> None:
    value = data.draw(st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1))
    w = Writer()
    w.sint(value, bits)
    r = Reader(w.getvalue())
    assert r.sint(bits) == value
    r.finish()
    assert bincode.unzigzag(bincode.zigzag(value, bits)) == value
    assert bincode.zigzag(value, bits) >= 0


@EXAMPLES
@given(st.integers(0, 0xFFFF))
def test_reader_accepts_a_wider_marker_as_bincode_does(value: int) -> None:
    wide = bytes([bincode.U32_MARKER]) + value.to_bytes(4, "big")
    assert Reader(wide).u16() == value


@EXAMPLES
@given(st.integers(1 << 16, (1 << 32) - 1))
def test_reader_refuses_a_value_too_large_for_its_type(value: int) -> None:
    with pytest.raises(BincodeError):
        Reader(bincode.encode_varint(value, 32)).u16()


def test_u128_marker_refused_for_u64() -> None:
    with pytest.raises(BincodeError):
        Reader(bincode.encode_varint(1 << 64, 128)).u64()


@EXAMPLES
@given(
    st.binary(max_size=600),
    st.text(max_size=50),
    st.none() | st.booleans(),
    st.binary(min_size=1, max_size=4),
)
def test_composite_values_and_trailing_bytes(
    blob: bytes, text: str, flag: bool | None, trailer: bytes
) -> None:
    w = Writer()
    w.byte_vec(blob)
    w.string(text)
    w.option_tag(flag is not None)
    if flag is not None:
        w.boolean(flag)
    w.i8(-1)
    encoded = w.getvalue()
    r = Reader(encoded)
    assert r.byte_vec() == blob and r.string() == text
    assert (r.boolean() if r.option_tag() else None) == flag
    assert r.i8() == -1
    r.finish()
    r = Reader(encoded + trailer)
    r.byte_vec(), r.string()
    if r.option_tag():
        r.boolean()
    r.i8()
    with pytest.raises(BincodeError):
        r.finish()


@EXAMPLES
@given(st.binary(max_size=40))
def test_bincode_reader_raises_only_its_error(data: bytes) -> None:
    readers: list[Callable[[Reader], object]] = [
        Reader.u8,
        Reader.i8,
        Reader.boolean,
        Reader.u16,
        Reader.u32,
        Reader.u64,
        Reader.u128,
        Reader.i16,
        Reader.i32,
        Reader.i64,
        Reader.variant,
        Reader.option_tag,
        Reader.byte_vec,
        Reader.string,
    ]
    for read in readers:
        with contextlib.suppress(BincodeError):
            read(Reader(data))


# --- LP frame -----------------------------------------------------------------------------


@EXAMPLES
@given(frames)
def test_frame_round_trip(frame: LpFrame) -> None:
    encoded = frame.encode()
    assert is_stream_frame(encoded) and LpFrame.decode(encoded) == frame


@EXAMPLES
@given(st.binary(max_size=40) | st.builds(lambda f, b: f.encode()[:b], frames, st.integers(0, 20)))
def test_frame_decoder_raises_only_its_error(data: bytes) -> None:
    try:
        frame = LpFrame.decode(data)
    except MalformedIprFrame:
        return
    assert is_stream_frame(data) and frame.encode()[:15] == data[:15]


# --- requests and responses ---------------------------------------------------------------


@EXAMPLES
@given(requests)
def test_request_round_trip(request: IpPacketRequest) -> None:
    assert IpPacketRequest.decode(request.encode()) == request


@EXAMPLES
@given(responses())
def test_response_round_trip(response: IpPacketResponse) -> None:
    assert IpPacketResponse.decode(response.encode()) == response


def _mutate(data: bytes, position: int, value: int, cut: int) -> bytes:
    if not data:
        return bytes([value])
    position %= len(data)
    mutated = data[:position] + bytes([value]) + data[position + 1 :]
    return mutated[: len(mutated) - cut % (len(mutated) + 1)]


mutated_messages = st.builds(
    _mutate,
    st.one_of(requests.map(lambda r: r.encode()), responses().map(lambda r: r.encode())),
    st.integers(0, 1 << 16),
    st.integers(0, 255),
    st.integers(0, 3),
)


@EXAMPLES
@given(st.binary(max_size=60) | mutated_messages)
def test_message_decoders_raise_only_their_errors(data: bytes) -> None:
    for decode in (IpPacketRequest.decode, IpPacketResponse.decode):
        try:
            decoded = decode(data)
        except IprError:
            continue
        assert decoded.encode() is not None  # anything accepted re-encodes without raising
    with contextlib.suppress(IprError):
        IpPacketResponse.decode(data, layout_version=9)


# --- bundles ------------------------------------------------------------------------------


@EXAMPLES
@given(st.lists(packets, max_size=8), st.lists(st.integers(0, 3000), max_size=6))
def test_bundle_round_trip_with_any_split(packet_list: list[bytes], cuts: list[int]) -> None:
    bundle = encode_bundle(packet_list)
    assert decode_bundle(bundle) == packet_list
    decoder = BundleDecoder()
    got: list[bytes] = []
    start = 0
    for cut in [*sorted(c % (len(bundle) + 1) for c in cuts), len(bundle)]:
        got += decoder.feed(bundle[start:cut])
        start = max(start, cut)
    decoder.finish()
    assert got == packet_list


@EXAMPLES
@given(st.lists(st.binary(max_size=1600), max_size=12), st.integers(100, MAX_BUNDLE_SIZE))
def test_exit_bundler_keeps_order_and_size(packet_list: list[bytes], limit: int) -> None:
    encoder = BundleEncoder(limit)
    bundles = [b for p in packet_list for b in encoder.push(p)]
    tail = encoder.flush()
    bundles += [tail] if tail is not None else []
    unpacked = [decode_bundle(b) for b in bundles]
    assert [p for group in unpacked for p in group] == packet_list
    for bundle, group in zip(bundles, unpacked, strict=True):
        assert len(bundle) <= limit or len(group) == 1
        assert group


@EXAMPLES
@given(
    st.lists(st.binary(min_size=20, max_size=1500), max_size=30),
    st.integers(1, 10),
    st.integers(0, 60),
)
def test_fragment_packer_keeps_order_and_never_costs_more(
    packet_list: list[bytes], max_fragments: int, envelope: int
) -> None:
    def fragments(n: int) -> int:
        return -(-(envelope + n) // 1604)

    packer = FragmentPacker(fragments, max_fragments)
    bundles = [b for p in packet_list for b in packer.push(p)] + packer.flush()
    assert packer.buffered == 0
    unpacked = [decode_bundle(b) for b in bundles]
    assert [p for group in unpacked for p in group] == packet_list
    for bundle, group in zip(bundles, unpacked, strict=True):
        assert bundle == encode_bundle(group)
        assert fragments(len(bundle)) <= max_fragments or len(group) == 1
    singly = sum(fragments(len(p) + LENGTH_PREFIX_SIZE) for p in packet_list)
    assert sum(fragments(len(b)) for b in bundles) <= singly


@EXAMPLES
@given(st.binary(max_size=80))
def test_bundle_decoder_raises_only_its_error(data: bytes) -> None:
    try:
        packets_out = decode_bundle(data)
    except MalformedBundle:
        return
    assert encode_bundle(packets_out) == data
    assert all(len(p) + LENGTH_PREFIX_SIZE <= len(data) for p in packets_out)


def test_loss_gate_reads_fates_not_a_growing_flight() -> None:
    gate = LossGate(0.9, 64)
    gate.observe(0, 0)
    gate.observe(63, 0)  # a sample is 64 fates
    assert gate.open and gate.share == 1.0
    gate.observe(64, 0)
    assert gate.open
    gate.observe(64 + 34, 30)  # ~47 % resent, as at 10 % loss per mix node
    assert not gate.open
    for n in range(1, 12):  # lossless again: it reopens within a few samples
        gate.observe(98 + 64 * n, 30)
    assert gate.open
