"""The interface: `stack.NetStack` demultiplexes packets to sockets and drives their timers."""
