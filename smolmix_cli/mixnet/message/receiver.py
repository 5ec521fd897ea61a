"""The receive path of a client, sans-io: gateway pushes in, events out (spec 2.5, 2.11).

A push is either a 21-byte ack (decrypted with our ack key to a fragment id) or
a message: a reply through one of our SURBs (recognised by the digest of its
reply key) or a regular packet (ephemeral key). Cover fragments are dropped,
the rest go through reassembly and come out as NymMessages. Reply keys are
forgotten after `max_reply_key_age` seconds (Nym: 24 h) and beyond `max_reply_keys`,
oldest first: a tunnel hands out 2 SURBs with every uplink message and more on
request, so 24 h alone let a busy session hold millions (~300 B each). An exit
keeps at most 1,000 SURBs per client (mixnet/client/core.py), so a key older
than the last 10,000 handed out belongs to a SURB nobody holds any more.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from smolmix_cli.mixnet.message.ack import is_ack_push, recover_fragment_id
from smolmix_cli.mixnet.message.fragment import Fragment, FragmentId
from smolmix_cli.mixnet.message.message import NymMessage, decode_message, unpad_message
from smolmix_cli.mixnet.message.reassembly import Reassembler
from smolmix_cli.mixnet.message.reply_surb import ReplySurb
from smolmix_cli.mixnet.packet.payload import is_cover, recover_fragment

MAX_REPLY_KEY_AGE = 24 * 3600.0
MAX_REPLY_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class AckReceived:
    fragment_id: FragmentId


@dataclass(frozen=True, slots=True)
class CoverReceived:
    pass


@dataclass(frozen=True, slots=True)
class FragmentReceived:
    """A fragment was stored; its message is not complete yet."""

    fragment_id: FragmentId
    via_reply: bool


@dataclass(frozen=True, slots=True)
class MessageReceived:
    message: NymMessage
    set_ids: tuple[int, ...]
    via_reply: bool


ReceiveEvent = AckReceived | CoverReceived | FragmentReceived | MessageReceived


class MessageReceiver:
    """Turns what the gateway pushes into acks and whole messages."""

    def __init__(
        self,
        encryption_private: bytes,
        ack_key: bytes,
        reassembler: Reassembler | None = None,
        *,
        max_reply_key_age: float = MAX_REPLY_KEY_AGE,
        max_reply_keys: int = MAX_REPLY_KEYS,
    ) -> None:
        self._private = encryption_private
        self._ack_key = ack_key
        self.reassembler = reassembler if reassembler is not None else Reassembler()
        self._reply_keys: dict[bytes, bytes] = {}  # digest -> key
        self._handed_out: dict[bytes, float] = {}  # digest -> when
        self._max_age = max_reply_key_age
        self._max_keys = max_reply_keys

    def remember_reply_surbs(self, surbs: Iterable[ReplySurb], now: float) -> None:
        """Register the keys of SURBs we hand out, so replies through them are recognised."""
        for surb in surbs:
            self._reply_keys[surb.key_digest] = surb.reply_key
            self._handed_out[surb.key_digest] = now
        while len(self._handed_out) > self._max_keys:  # oldest first (insertion order)
            digest = next(iter(self._handed_out))
            del self._handed_out[digest], self._reply_keys[digest]

    def expire(self, now: float) -> None:
        """Forget old reply keys and drop stale incomplete messages."""
        for digest, born in list(self._handed_out.items()):
            if now - born >= self._max_age:
                del self._handed_out[digest], self._reply_keys[digest]
        self.reassembler.cleanup(now)

    @property
    def reply_keys(self) -> int:
        return len(self._reply_keys)

    def on_push(self, plaintext: bytes, now: float) -> ReceiveEvent:
        """Handle one pushed plaintext; bad input raises MixnetError subclasses."""
        if is_ack_push(plaintext):
            return AckReceived(recover_fragment_id(self._ack_key, plaintext))
        data, via_reply = recover_fragment(plaintext, self._private, self._reply_keys)
        if is_cover(data):
            return CoverReceived()
        fragment = Fragment.from_bytes(data)
        done = self.reassembler.insert(fragment, now)
        if done is None:
            return FragmentReceived(fragment.fragment_id, via_reply)
        message = decode_message(unpad_message(done.padded))
        return MessageReceived(message, done.set_ids, via_reply)
