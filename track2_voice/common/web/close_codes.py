"""The WebSocket close codes the creature's peers understand, written once."""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    """WebSocket close codes the creature's peers understand (4000-4999 are for applications;
    the others are RFC 6455's)."""

    POLICY = 1008  # "Policy Violation": the model server's wrong token, origin or parameter
    TOO_BIG = 1009  # a message larger than this endpoint accepts
    STALLED = 1011  # the peer took nothing for too long ("Internal Error" is the closest)
    TRY_LATER = 1013  # "Try Again Later": every model server slot is taken
    BAD_STREAM = 4400  # a call whose stream does not follow the protocol (or its format)
    UNAUTHORIZED = 4401  # missing or wrong token
    AUDIO_OFF = 4403  # the phone's audio endpoint is switched off
    BAD_ORIGIN = 4406  # a browser page from an origin not on the allow-list
    TOO_SLOW = 4408  # a robot that does not read its calls
    REPLACED = 4409  # a newer phone (or robot, with take_over) took over
    ROBOT_IN_USE = 4410  # a robot of this name is already connected
    BUSY = 4429  # the creature is already on a call
