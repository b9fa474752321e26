"""Free TCP ports on loopback."""

from __future__ import annotations

import random
import socket

# Blocks are taken below the kernel's ephemeral range (32768 and up on Linux), so no client
# connection of the suite can be holding one of their ports.
BLOCK_RANGE = (20000, 26000)
EPHEMERAL_START = 32768


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (so connecting is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_block(size: int, *, offsets: tuple[int, ...] = (0,)) -> int:
    """A base port whose ``size`` successors are free, at each of ``offsets`` from it too (a
    Redis Cluster node also listens on its port + 10000, its bus)."""
    low, high = BLOCK_RANGE
    high = min(high, EPHEMERAL_START - max(offsets) - size)
    for _ in range(200):
        base = random.randrange(low, high)
        if all(_free(base + offset + n) for offset in offsets for n in range(size)):
            return base
    raise RuntimeError("no free block of loopback ports")


def _free(port: int) -> bool:
    """Whether a server could listen on ``port`` (as Redis does, with SO_REUSEADDR: a port
    whose last connections are in TIME_WAIT counts as free)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
