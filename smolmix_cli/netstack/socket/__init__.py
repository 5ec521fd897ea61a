"""Socket state machines, sans-io: what one connection or bound port knows and does."""
