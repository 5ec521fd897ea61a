"""Node-to-node framing (spec 2.7). UNVERIFIED against the real network: the official-client
vectors do not contain framed packets, so these tests only check the codec against the spec's
tables and itself."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.packet.framing import Frame, FrameDecoder, FramingError
from smolmix_cli.mixnet.packet.size import FrameVersion, PacketSize, PacketType, SphinxKeyRotation
from tests.vectors import h, load_vector

PACKET = h(load_vector("official-client", "sphinx-packets.json")["packets"][0]["sphinx_packet"])
ACK = h(
    load_vector("official-client", "sphinx-packets.json")["packets"][0]["final"][
        "surb_ack_packet_386"
    ]
)


def test_unverified_frame_header_layout_per_spec() -> None:
    v7 = Frame.for_packet(PACKET).to_bytes()
    assert v7[:3] == bytes([FrameVersion.INITIAL, PacketSize.REGULAR, PacketType.MIX])
    assert v7[3:] == PACKET
    v8 = Frame.for_packet(
        ACK, key_rotation=SphinxKeyRotation.EVEN, version=FrameVersion.KEY_ROTATION
    ).to_bytes()
    assert v8[:4] == bytes(
        [FrameVersion.KEY_ROTATION, PacketSize.ACK, PacketType.MIX, SphinxKeyRotation.EVEN]
    )


@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from(list(SphinxKeyRotation)), st.booleans()),
        max_size=6,
    ),
    st.integers(0, 2**32),
)
def test_unverified_incremental_decoding_any_chunking(
    spec: list[tuple[bool, SphinxKeyRotation, bool]], seed: int
) -> None:
    frames = [
        Frame.for_packet(
            PACKET if big else ACK,
            key_rotation=rot if v8 else SphinxKeyRotation.UNKNOWN,
            version=FrameVersion.KEY_ROTATION if v8 else FrameVersion.INITIAL,
        )
        for big, rot, v8 in spec
    ]
    stream = b"".join(f.to_bytes() for f in frames)
    rnd = random.Random(seed)
    decoder = FrameDecoder()
    out: list[Frame] = []
    i = 0
    while i < len(stream):
        step = rnd.randint(1, 700)
        out += decoder.feed(stream[i : i + step])
        i += step
    assert out == frames and decoder.buffered == 0


@pytest.mark.parametrize(
    "header",
    [b"\x06\x01\x00", b"\x09\x01\x00", b"\x07\x09\x00", b"\x07\x01\x01", b"\x08\x01\x00\x03"],
)
def test_unverified_bad_headers_poison_the_decoder(header: bytes) -> None:
    decoder = FrameDecoder()
    with pytest.raises(FramingError):
        decoder.feed(header + PACKET)
    with pytest.raises(FramingError):
        decoder.feed(Frame.for_packet(PACKET).to_bytes())


def test_unverified_disallowed_size_rejected_before_buffering() -> None:
    decoder = FrameDecoder(allowed_sizes=frozenset({PacketSize.REGULAR, PacketSize.ACK}))
    with pytest.raises(FramingError):
        decoder.feed(bytes([FrameVersion.INITIAL, PacketSize.EXTENDED32, PacketType.MIX]))
    assert decoder.buffered == 0


def test_frame_packet_length_must_match_size() -> None:
    with pytest.raises(FramingError):
        Frame(PACKET[:-1], PacketSize.REGULAR)


@given(st.binary(max_size=3000))
def test_unverified_decoder_raises_only_mixnet_errors(data: bytes) -> None:
    decoder = FrameDecoder()
    try:
        frames = decoder.feed(data)
    except MixnetError:
        return
    assert decoder.buffered + sum(f.version.header_size + len(f.packet) for f in frames) == len(
        data
    )
