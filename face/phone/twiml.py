"""The TwiML the webhook answers a carrier's incoming call with (the ``twilio`` package
writes it): connect the call's media stream to the bridge, or reject it as busy."""

from __future__ import annotations


def stream_twiml(stream_url: str, parameter: str, ticket: str) -> str:
    """``<Connect><Stream url=...>`` with the stream's single-use ticket as a parameter."""
    from twilio.twiml.voice_response import Connect, VoiceResponse

    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=stream_url)
    stream.parameter(name=parameter, value=ticket)
    response.append(connect)
    return response.to_xml()


def busy_twiml() -> str:
    """``<Reject reason="busy">``: the creature is on another call."""
    from twilio.twiml.voice_response import VoiceResponse

    response = VoiceResponse()
    response.reject(reason="busy")
    return response.to_xml()
