"""The official client's recorded gateway transcript, replayed against both of our sides."""

from __future__ import annotations

import json
from typing import Any

from smolmix_cli.mixnet.gateway.frames import (
    RequestKind,
    ResponseKind,
    decrypt_push,
    decrypt_request,
    encrypt_push,
    encrypt_request,
    split_frame,
)
from smolmix_cli.mixnet.gateway.handshake import (
    GatewayHandshake,
    GatewayMaterialExchange,
    Initialisation,
    MaterialExchange,
    X25519Ephemeral,
    build_authenticate_v2,
    derive_shared_key,
    ed25519_public_bytes,
    ed25519_verify,
    parse_finalization,
    verify_authenticate_v2,
)
from smolmix_cli.mixnet.gateway.messages import (
    AuthenticateV2,
    HandshakePayload,
    parse_client_message,
    parse_server_message,
)
from smolmix_cli.mixnet.gateway.session import (
    Authenticated,
    BandwidthChanged,
    ClientAuthenticated,
    ClientRegistered,
    ForwardPacket,
    GatewayClientSession,
    GatewayConnection,
    GatewayRegistry,
    MessageReceived,
    Ready,
    Registered,
    SendBinary,
    SendText,
)
from smolmix_cli.mixnet.gateway.shared_key import SharedKey
from tests.mixnet.gateway_vectors import (
    ScriptedRng,
    client_identity,
    frames,
    gateway_identity,
    handshake_vector,
    packets_vector,
    recorded_client_ephemeral,
)
from tests.vectors import h


def _reg() -> Any:
    return handshake_vector()["registration"]


def _auth() -> Any:
    return handshake_vector()["authentication"]


def _key() -> SharedKey:
    return SharedKey(h(_reg()["step2_gateway_material"]["shared_key_aes256gcmsiv"]))


def _gateway_now() -> float:
    """The gateway clock at authenticateV2 (recorded skew = request timestamp - gateway time)."""
    auth = _auth()
    return (
        auth["authenticateV2_json"]["requestUnixTimestamp"]
        - auth["timestamp_skew_seconds_at_gateway"]
    )


def _frame_bytes(frame: dict[str, Any]) -> bytes:
    return h(frame["hex"]) if frame["ws_type"] == "binary" else frame["text"].encode()


# --------------------------------------------------------------------------- recorded keys


def test_recorded_identities_match_their_private_keys() -> None:
    vec = handshake_vector()
    assert ed25519_public_bytes(client_identity()) == h(vec["client"]["ed25519_identity_public"])
    assert ed25519_public_bytes(gateway_identity()) == h(vec["gateway"]["ed25519_identity_public"])


def test_handshake_payload_texts_carry_the_recorded_data() -> None:
    for frame in frames("registration"):
        if "data_hex" in frame:
            msg = parse_server_message(frame["text"])
            assert isinstance(msg, HandshakePayload)
            assert msg.data == h(frame["data_hex"])
            assert len(msg.data) == frame["data_len"]
            assert msg.to_json() == frame["text"]


# --------------------------------------------------------------------------- step payloads


def test_step1_fields() -> None:
    step1 = _reg()["step1_client_init"]
    init = Initialisation.from_bytes(h(step1["data"]))
    assert init.identity == h(step1["client_identity_ed25519"])
    assert init.ephemeral == h(step1["client_ephemeral_x25519_public"])
    assert init.salt == h(step1["salt"])
    assert init.to_bytes() == h(step1["data"])


def test_step2_fields_and_key_derivation() -> None:
    reg = _reg()
    step1, step2 = reg["step1_client_init"], reg["step2_gateway_material"]
    material = GatewayMaterialExchange.from_bytes(h(step2["data"]))
    assert material.ephemeral == h(step2["gateway_ephemeral_x25519_public"])
    assert material.material.signature_ciphertext == h(step2["signature_ciphertext"])
    assert material.material.nonce == h(step2["nonce"])
    assert material.to_bytes() == h(step2["data"])

    eph = X25519Ephemeral.from_private_bytes(h(step2["gateway_ephemeral_x25519_private"]))
    assert eph.public_bytes() == h(step2["gateway_ephemeral_x25519_public"])
    secret = eph.exchange(h(step1["client_ephemeral_x25519_public"]))
    assert secret == h(step2["x25519_shared_secret"])
    key = derive_shared_key(secret, h(step1["salt"]))
    assert (
        key.raw == h(step2["shared_key_aes256gcmsiv"]) == h(reg["shared_key_as_stored_by_client"])
    )

    signed = h(step2["signed_message_gw_eph_then_client_eph"])
    assert signed == material.ephemeral + h(step1["client_ephemeral_x25519_public"])
    signature = key.decrypt(material.material.signature_ciphertext, material.material.nonce)
    assert signature == h(step2["gateway_signature"])
    assert ed25519_verify(
        h(handshake_vector()["gateway"]["ed25519_identity_public"]), signature, signed
    )
    assert gateway_identity().sign(signed) == signature  # ed25519 is deterministic
    assert key.encrypt(signature, material.material.nonce) == material.material.signature_ciphertext


def test_step3_fields_and_signature() -> None:
    reg = _reg()
    step3 = reg["step3_client_material"]
    material = MaterialExchange.from_bytes(h(step3["data"]))
    assert material.signature_ciphertext == h(step3["signature_ciphertext"])
    assert material.nonce == h(step3["nonce"])
    assert material.to_bytes() == h(step3["data"])
    signature = _key().decrypt(material.signature_ciphertext, material.nonce)
    assert signature == h(step3["client_signature_decrypted"])
    signed = h(step3["signed_message_client_eph_then_gw_eph"])
    assert signed == (
        h(reg["step1_client_init"]["client_ephemeral_x25519_public"])
        + h(reg["step2_gateway_material"]["gateway_ephemeral_x25519_public"])
    )
    assert ed25519_verify(
        h(handshake_vector()["client"]["ed25519_identity_public"]), signature, signed
    )
    assert step3["verified"] is True
    assert client_identity().sign(signed) == signature


def test_step4_finalization() -> None:
    assert parse_finalization(h(_reg()["step4_finalization"]["data"])) is True


# --------------------------------------------------------------------------- gateway side


def test_gateway_handshake_reproduces_recorded_gateway_frames() -> None:
    reg = _reg()
    step2 = reg["step2_gateway_material"]
    rng = ScriptedRng([h(step2["nonce"])])
    gw = GatewayHandshake(
        gateway_identity(),
        ephemeral=X25519Ephemeral.from_private_bytes(h(step2["gateway_ephemeral_x25519_private"])),
        rng=rng,
    )
    recorded = frames("registration")
    step1_msg = parse_client_message(recorded[2]["text"])
    step3_msg = parse_client_message(recorded[4]["text"])
    assert isinstance(step1_msg, HandshakePayload) and isinstance(step3_msg, HandshakePayload)
    assert gw.receive(step1_msg).to_json() == recorded[3]["text"]
    assert gw.result is None
    assert gw.receive(step3_msg).to_json() == recorded[5]["text"]
    assert gw.result is not None
    assert gw.result.shared_key == _key()
    assert gw.result.protocol_version == 6 == step1_msg.protocol_version
    assert gw.result.remote_identity == h(handshake_vector()["client"]["ed25519_identity_public"])
    assert rng.exhausted


def _replay_gateway(
    conn: GatewayConnection, recorded: list[dict[str, Any]], now: float, pushes: dict[int, bytes]
) -> list[object]:
    """Feed the C->G frames; at each G->C frame compare what our gateway sent."""
    outbox: list[bytes] = []
    other: list[object] = []

    def collect(events: list[Any]) -> None:
        for ev in events:
            if isinstance(ev, SendText):
                outbox.append(ev.text.encode())
            elif isinstance(ev, SendBinary):
                outbox.append(ev.data)
            else:
                other.append(ev)

    for i, frame in enumerate(recorded):
        if frame["dir"] == "C->G":
            if frame["ws_type"] == "text":
                collect(conn.receive_text(frame["text"], now=now))
            else:
                collect(conn.receive_binary(h(frame["hex"]), now=now))
        else:
            if i in pushes:
                collect(conn.push(pushes[i]))
            assert outbox, f"our gateway sent nothing where frame {i} was recorded"
            assert outbox.pop(0) == _frame_bytes(frame), f"frame {i} differs"
    assert not outbox, "our gateway sent more frames than recorded"
    return other


def test_gateway_connections_replay_registration_then_authentication() -> None:
    reg, auth = _reg(), _auth()
    step2 = reg["step2_gateway_material"]
    registry = GatewayRegistry(gateway_identity())
    conn1 = GatewayConnection(
        registry,
        rng=ScriptedRng([h(step2["nonce"])]),
        ephemeral_factory=lambda: X25519Ephemeral.from_private_bytes(
            h(step2["gateway_ephemeral_x25519_private"])
        ),
    )
    first = frames("registration")
    other = _replay_gateway(conn1, first, first[0]["t_s"], {})
    client = h(handshake_vector()["client"]["ed25519_identity_public"])
    assert other == [ClientRegistered(client)]
    assert registry.clients[client].shared_key == _key()
    assert registry.clients[client].bandwidth == 0
    conn1.connection_lost()  # the client closes connection 1 itself
    assert client not in registry.connected

    second = frames("authentication")
    packet0 = packets_vector()["packets"][0]
    ack_push = packet0["gateway_pushes_to_client"][0]
    assert ack_push["frame"] == second[8]["hex"]
    # frame 11's plaintext is not in the vectors; recover it with the recorded key
    frame11_plain = decrypt_push(h(second[11]["hex"]), _key())
    rng = ScriptedRng([h(ack_push["nonce"]), split_frame(h(second[11]["hex"])).nonce])
    conn2 = GatewayConnection(registry, rng=rng)
    other = _replay_gateway(
        conn2, second, _gateway_now(), {8: h(ack_push["plaintext"]), 11: frame11_plain}
    )
    assert rng.exhausted
    assert other[0] == ClientAuthenticated(client)
    forwarded = [ev for ev in other if isinstance(ev, ForwardPacket)]
    assert len(forwarded) == 2
    assert forwarded[0] == ForwardPacket(
        RequestKind.FORWARD_SPHINX_V2, h(packet0["mix_packet_v2"]["bytes"]), client
    )
    assert (
        registry.clients[client].last_auth_timestamp
        == auth["authenticateV2_json"]["requestUnixTimestamp"]
    )
    sphinx_len = int(packet0["mix_packet_v2"]["sphinx_packet_len"])
    assert (
        registry.clients[client].bandwidth
        == json.loads(second[5]["text"])["available_total"] - 2 * sphinx_len
    )


# --------------------------------------------------------------------------- client side


def test_client_session_reproduces_recorded_registration_frames() -> None:
    reg = _reg()
    first = frames("registration")
    rng = ScriptedRng(
        [h(reg["step1_client_init"]["salt"]), h(reg["step3_client_material"]["nonce"])]
    )
    gw_pub = h(handshake_vector()["gateway"]["ed25519_identity_public"])
    session = GatewayClientSession(
        client_identity(), gw_pub, rng=rng, ephemeral=recorded_client_ephemeral()
    )
    assert session.start() == [SendText(first[0]["text"])]
    assert session.receive_text(first[1]["text"], now=first[1]["t_s"]) == [
        SendText(first[2]["text"])
    ]
    assert session.receive_text(first[3]["text"], now=first[3]["t_s"]) == [
        SendText(first[4]["text"])
    ]
    assert session.receive_text(first[5]["text"], now=first[5]["t_s"]) == []
    events = session.receive_text(first[6]["text"], now=first[6]["t_s"])
    assert events[0] == Registered(SharedKey(h(reg["shared_key_as_stored_by_client"])), 6)
    # our client stays on the connection and claims at once (the official one reconnects first)
    assert events[1:] == [SendText(frames("authentication")[4]["text"])]
    assert rng.exhausted


def test_client_session_reproduces_recorded_authentication_frames() -> None:
    auth = _auth()
    second = frames("authentication")
    packet0 = packets_vector()["packets"][0]
    frame9 = split_frame(h(second[9]["hex"]))
    rng = ScriptedRng([h(auth["nonce"]), h(packet0["gateway_frame"]["nonce"]), frame9.nonce])
    gw_pub = h(handshake_vector()["gateway"]["ed25519_identity_public"])
    session = GatewayClientSession(client_identity(), gw_pub, shared_key=_key(), rng=rng)
    ts = auth["authenticateV2_json"]["requestUnixTimestamp"]
    assert session.start() == [SendText(second[0]["text"])]
    assert session.receive_text(second[1]["text"], now=ts + 0.25) == [SendText(second[2]["text"])]
    events = session.receive_text(second[3]["text"], now=ts + 0.3)
    assert events == [Authenticated(6, 0), SendText(second[4]["text"])]
    events = session.receive_text(second[5]["text"], now=ts + 0.3)
    assert events == [BandwidthChanged(json.loads(second[5]["text"])["available_total"]), Ready()]

    assert session.send_mix_packet(h(packet0["mix_packet_v2"]["bytes"])) == [
        SendBinary(h(second[6]["hex"]))
    ]
    remaining = json.loads(second[7]["text"])["remaining_bandwidth"]
    assert session.receive_text(second[7]["text"], now=ts + 1) == [BandwidthChanged(remaining)]
    ack = packet0["gateway_pushes_to_client"][0]
    assert session.receive_binary(h(second[8]["hex"])) == [MessageReceived(h(ack["plaintext"]))]
    _, plain9 = decrypt_request(h(second[9]["hex"]), _key())
    assert session.send_mix_packet(plain9) == [SendBinary(h(second[9]["hex"]))]
    assert rng.exhausted


# --------------------------------------------------------------------------- authenticateV2


def test_authenticate_v2_reproduced_and_verified() -> None:
    auth = _auth()
    recorded_text = frames("authentication")[2]["text"]
    parsed = parse_client_message(recorded_text)
    assert isinstance(parsed, AuthenticateV2)
    assert json.loads(recorded_text) == auth["authenticateV2_json"]
    assert parsed.address_ciphertext == h(auth["address_ciphertext"])
    assert parsed.nonce == h(auth["nonce"])
    assert parsed.request_signature == h(auth["signature"])
    assert parsed.signed_bytes() == h(auth["signed_bytes"])
    assert _key().decrypt(parsed.address_ciphertext, parsed.nonce) == h(
        auth["address_ciphertext_decrypted"]
    )
    assert _key().encrypt(parsed.client_identity, parsed.nonce) == h(
        auth["gateway_recomputed_ciphertext"]
    )

    ts = auth["authenticateV2_json"]["requestUnixTimestamp"]
    built = build_authenticate_v2(
        client_identity(), _key(), 6, ts + 0.9, rng=ScriptedRng([h(auth["nonce"])])
    )
    assert built == parsed
    assert built.to_json() == recorded_text
    assert verify_authenticate_v2(parsed, _key(), _gateway_now(), None) == 6


# --------------------------------------------------------------------------- binary frames


def test_recorded_forward_frames_decrypt_and_reencrypt() -> None:
    key = _key()
    for packet in packets_vector()["packets"]:
        frame = packet["gateway_frame"]
        raw = h(frame["raw"])
        parts = split_frame(raw)
        assert parts.kind == frame["kind"] == RequestKind.FORWARD_SPHINX_V2
        assert raw[1] == frame["encrypted_flag"]
        assert parts.nonce == h(frame["nonce"])
        assert parts.ciphertext == h(frame["ciphertext_with_tag"])
        kind, plaintext = decrypt_request(raw, key)
        assert kind is RequestKind.FORWARD_SPHINX_V2
        assert plaintext == h(packet["mix_packet_v2"]["bytes"])
        assert len(plaintext) == 1 + 1 + 7 + int(packet["mix_packet_v2"]["sphinx_packet_len"])
        assert encrypt_request(kind, plaintext, key, nonce=parts.nonce) == raw


def test_recorded_pushes_decrypt_and_reencrypt() -> None:
    key = _key()
    count = 0
    for packet in packets_vector()["packets"]:
        for push in packet["gateway_pushes_to_client"]:
            raw = h(push["frame"])
            assert raw[0] == ResponseKind.PUSHED_MIX_MESSAGE
            assert split_frame(raw).nonce == h(push["nonce"])
            assert decrypt_push(raw, key) == h(push["plaintext"])
            assert encrypt_push(h(push["plaintext"]), key, nonce=h(push["nonce"])) == raw
            count += 1
    assert count == 5
