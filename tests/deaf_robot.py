"""A robot that connects to the robot channel and then never reads a byte (a raw socket)."""

from __future__ import annotations

import base64
import os
import socket
from urllib.parse import urlparse

RCVBUF = 4096  # keep the kernel's receive buffer small so it fills quickly


def connect_deaf_robot(url: str, token: str) -> socket.socket:
    u = urlparse(url)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    s.connect((u.hostname, u.port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET {u.path}?token={token}&robot=deaf HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            raise ConnectionError("the robot channel closed the handshake")
        head += chunk
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise ConnectionError(f"handshake refused: {head[:80]!r}")
    return s  # from here on nobody reads it
