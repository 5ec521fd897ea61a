"""`smolmix doctor`: what a user pastes into a bug report when the mixnet does not work.

`report` holds the findings and decides the exit code, `census` counts the directory's
nodes, `probe` is the sans-io IPR Health probe, `render` prints the text table; `run`
is the anyio shell that reads the directory, connects one gateway and probes a few
exits at a time, each finding kept even when a later phase fails.
"""
