"""Packet formats: encoding and decoding, checksums; no state beyond a packet."""
