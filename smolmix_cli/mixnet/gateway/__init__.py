"""The client-gateway WebSocket protocol: handshake, frames, control messages, both ends.

Each end is a sans-io machine (`client_session`, `gateway_connection`) speaking the events
of `session_events`; MixPackets and pushed messages stay opaque bytes here.
"""
