"""TCP: `connection.TcpConnection` (the state machine) and the parts it is made of."""
