"""Every parser of the nym-sphinx layer raises only mixnet errors on arbitrary input.

The default run uses a few hundred examples per parser, `--hypothesis-profile=fuzz`
10,000.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.message.ack import SurbAck, recover_fragment_id
from smolmix_cli.mixnet.message.fragment import Fragment, FragmentId
from smolmix_cli.mixnet.message.message import decode_message, encode_message, unpad_message
from smolmix_cli.mixnet.message.reassembly import Reassembler
from smolmix_cli.mixnet.message.reply_surb import ReplySurb
from smolmix_cli.mixnet.packet.framing import FrameDecoder
from smolmix_cli.mixnet.packet.mix_packet import MixPacket
from smolmix_cli.mixnet.packet.payload import NymPayload, decrypt_regular, decrypt_reply
from tests.fuzzing import scaled
from tests.vectors import h, load_vector

_KEY = bytes(range(32))
_REPLY_KEY = bytes(range(16))
_SURB = h(load_vector("official-client", "reply-surb.json")["first"]["reply_surb"])
_NYM = h(load_vector("official-client", "ipr-messages.json")["messages"][1]["nym_message"])


def _check_message(data: bytes) -> None:
    message = decode_message(data)
    assert decode_message(encode_message(message)) == message


def _reassemble(data: bytes) -> None:
    reassembler = Reassembler(max_sets=4, max_bytes=4096)
    for i in range(0, len(data), 24):
        reassembler.insert(Fragment.from_bytes(data[i : i + 24]), now=float(i))


PARSERS: dict[str, Callable[[bytes], Any]] = {
    "fragment": Fragment.from_bytes,
    "fragment_id": FragmentId.from_bytes,
    "nym_message": _check_message,
    "unpad": unpad_message,
    "reply_surb": ReplySurb.from_bytes,
    "reply_surb_base58": lambda d: ReplySurb.from_base58(d.decode("latin-1")),
    "nym_payload": NymPayload.from_bytes,
    "surb_ack": SurbAck.from_bytes,
    "ack_id": lambda d: recover_fragment_id(_REPLY_KEY, d),
    "decrypt_regular": lambda d: decrypt_regular(d, _KEY),
    "decrypt_reply": lambda d: decrypt_reply(d, _REPLY_KEY),
    "mix_packet_v1": MixPacket.from_v1_bytes,
    "mix_packet_v2": MixPacket.from_v2_bytes,
    "frame_decoder": lambda d: FrameDecoder().feed(d),
    "reassembly": _reassemble,
}


def _inputs() -> st.SearchStrategy[bytes]:
    """Random bytes, plus mutations of real message and SURB bytes to get past the first checks."""

    def mutate(base: bytes, seed: int, cut: int) -> bytes:
        rnd = random.Random(seed)
        data = bytearray(base[: max(1, cut)])
        for _ in range(rnd.randint(0, 4)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        return bytes(data)

    return st.one_of(
        st.binary(max_size=600),
        st.builds(
            mutate,
            st.sampled_from([_NYM, _SURB, b"\x02\x01" + _NYM[:100]]),
            st.integers(0, 2**32),
            st.integers(0, 2000),
        ),
    )


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=scaled(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_inputs())
def test_parsers_raise_only_mixnet_errors(name: str, data: bytes) -> None:
    with contextlib.suppress(MixnetError):
        PARSERS[name](data)
