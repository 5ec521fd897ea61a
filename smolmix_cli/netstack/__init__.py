"""Userspace IPv4/IPv6 TCP/UDP stack: sans-io cores, thin anyio adapters.

Rooms, from the wire up (after smoltcp's layout):
- `wire`: packet formats (IP, ICMP, UDP, TCP) and the Internet checksum.
- `socket`: per-socket state machines; `socket.tcp` is the TCP connection
  and its parts (receive and send halves, scoreboard, RACK-TLP, congestion
  control, RTT), `socket.udp` a bound UDP port.
- `iface`: `NetStack`, one host's interface: addresses, ports, demultiplexing,
  ICMP, fragment reassembly, and the handles applications hold.
- `phy`: packet devices (in-memory links, TUN, packet sockets).
- `aio`: the anyio shell that drives a stack with a device and the clock.
The sans-io cores (`NetStack`, `TcpConnection`) share one driving contract:
`poll_deadline() -> float | None`, `handle_timeout(now)`, `poll_transmit(now)`.
They are compiled by mypyc where possible (`native.NATIVE_CORE`).
"""
