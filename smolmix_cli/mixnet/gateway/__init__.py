"""The client-gateway WebSocket protocol: handshake, frames, control messages, both ends.

Both ends share one sans-io session; MixPackets and pushed messages stay opaque bytes here.
"""
