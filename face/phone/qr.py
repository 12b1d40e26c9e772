"""The URL as a QR code in the terminal, so a phone opens it with its camera."""

from __future__ import annotations

import io


def qr_text(url: str) -> str:
    """A compact QR code drawn with block characters (two rows per line)."""
    import segno

    buf = io.StringIO()
    segno.make(url, error="m").terminal(out=buf, compact=True, border=2)
    return buf.getvalue()
