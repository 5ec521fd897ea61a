"""Packet devices: where a stack's IP packets enter and leave (`device.PacketDevice`)."""
