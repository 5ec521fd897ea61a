"""The IP tunnel: one mixnet client, one IPR session, one userspace stack, as a Connector."""
