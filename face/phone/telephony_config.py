"""Typed settings of the telephone bridge (section ``telephony:`` of configs/creature.yaml)."""

from __future__ import annotations

from pydantic import Field

from track2_voice.common.limits import ServerLimits
from track2_voice.common.settings import Strict


class TelephonyConfig(Strict):
    """The bridge a carrier's call streams into: address, credentials, pacing, limits."""

    host: str = Field(
        "127.0.0.1",
        description="interface of the bridge (a tunnel on this machine forwards the carrier to "
        "it; 0.0.0.0 for a public host)",
    )
    port: int = Field(
        8767,
        ge=0,
        le=65535,
        description="TCP port of the bridge (0: any free port; the face uses 8765, the robot "
        "channel 8766)",
    )
    public_url: str | None = Field(
        None,
        pattern=r"^https?://[^/?#]+$",
        description="the bridge's address as the carrier sees it, e.g. https://abc.ngrok.app "
        "(signatures are checked against it and the stream URL is made from it); null: from "
        "the request's Host and X-Forwarded-Proto headers if trust_forwarded_headers, else the "
        "bridge's own address (then no carrier's signature can match)",
    )
    trust_forwarded_headers: bool = Field(
        False,
        description="believe the request's Host, X-Forwarded-Proto and X-Forwarded-For (only "
        "behind a tunnel or proxy that sets them: sent directly, they would let a signature made "
        "for another host pass, and let one address pose as many)",
    )
    token: str | None = Field(
        None,
        min_length=8,
        description="the creature's own credential for the webhook and the stream (tests, other "
        "carriers); null: a random one, made once and kept in STATE_DIR/telephony-token",
    )
    twilio_auth_token: str | None = Field(
        None,
        description="the Twilio account's auth token, to check X-Twilio-Signature; the "
        "TWILIO_AUTH_TOKEN environment variable wins over this key",
    )
    lead_ms: float = Field(
        60.0,
        ge=20,
        le=1000,
        description="how far ahead of real time the creature's voice is sent (the carrier's "
        "buffer); a barge-in's 'clear' drops at most this much",
    )
    mark_every_frames: int = Field(
        5, ge=1, le=125, description="send a mark after every this many 80 ms frames"
    )
    send_queue_frames: int = Field(
        25, ge=2, le=500, description="frames of the creature's voice queued before drop-oldest"
    )
    clear_on_barge_in: bool = Field(
        True, description="send 'clear' when the caller starts talking over the creature"
    )
    start_timeout_s: float = Field(
        5.0, gt=0, le=60, description="a stream that has not sent 'start' by then is closed"
    )
    max_message_bytes: int = Field(
        65536, ge=1024, le=1 << 20, description="the largest WebSocket message accepted"
    )
    ticket_ttl_s: float = Field(
        30.0,
        gt=0,
        le=600,
        description="how long the single-use stream ticket of a served TwiML stays valid (the "
        "carrier opens the stream within a second or two)",
    )
    max_unauthenticated: int = Field(
        8,
        ge=1,
        le=1024,
        description="streams with no credential on their upgrade (no valid signature, no token) "
        "waiting for 'start', in all; a newcomer sheds the oldest of the address holding most",
    )
    max_unauthenticated_per_address: int = Field(
        2,
        ge=1,
        le=1024,
        description="the same, per client address; a newcomer sheds that address's oldest "
        "(behind a tunnel every client has the tunnel's address, unless "
        "trust_forwarded_headers)",
    )
    max_credentialed_pending: int = Field(
        4,
        ge=1,
        le=1024,
        description="streams with a valid signature or token on their upgrade waiting for "
        "'start'; a newcomer sheds the oldest",
    )
    limits: ServerLimits = Field(
        default_factory=ServerLimits,
        description="the bridge server's connection limits (docs/security.md); behind a tunnel "
        "all carrier traffic has one address: raise per_ip_rate/per_ip_burst or set "
        "per_ip_rate: 0; WebSocket messages: the smaller of ws_max_message_bytes and "
        "telephony.max_message_bytes",
    )
