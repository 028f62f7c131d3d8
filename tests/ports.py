"""Free TCP ports on 127.0.0.1 for the multi-worker tests' TF_CONFIG clusters."""

import socket


def free_ports(n: int) -> list[int]:
    """`n` distinct ports that were free a moment ago (bound together, then released)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports
