"""The web layer every endpoint the creature serves is built on: the face, the phone's audio,
the telephone bridge, the robot channel and its expression stream, ``/metrics`` and the model
server. It lives in the neutral ground (``track2_voice.common``) because the import rule lets
every package import that and nothing else of another package's.

One job per module; the names most endpoints need are re-exported here:

- ``close_codes``: ``CloseCode``, the WebSocket close codes the creature's peers understand;
- ``access``: ``token_ok``, ``bearer``, the browser-origin policy and ``OriginGate``;
- ``mailbox``: ``Mailbox``, a socket's outgoing drop-oldest queue (``common.drop_oldest``),
  and ``bounded`` (a send with a stall timeout);
- ``peer_json``: ``loads_bounded``, the one parser for JSON a peer sends;
- ``bodies``: ``read_bounded``, a request body read against its cap;
- ``app_server``: ``bind_socket`` and ``AppServer`` (uvicorn on a loop someone else owns);
- ``guard``, ``guarded``: uvicorn's HTTP protocol with the limits of ``common.limits`` applied.
"""

from track2_voice.common.web.access import (
    OriginGate,
    OriginPolicy,
    bearer,
    origin_allowed,
    served_origins,
    this_host_names,
    token_ok,
)
from track2_voice.common.web.app_server import WS_IMPL, AppServer, bind_socket, ws_protocol
from track2_voice.common.web.close_codes import CloseCode
from track2_voice.common.web.mailbox import Mailbox, ThreadFedMailbox, bounded
from track2_voice.common.web.peer_json import (
    MAX_JSON_BYTES,
    JsonTooBig,
    JsonTooDeep,
    MalformedJson,
    clip,
    loads_bounded,
)

__all__ = [
    "MAX_JSON_BYTES",
    "WS_IMPL",
    "AppServer",
    "CloseCode",
    "JsonTooBig",
    "JsonTooDeep",
    "Mailbox",
    "MalformedJson",
    "OriginGate",
    "OriginPolicy",
    "ThreadFedMailbox",
    "bearer",
    "bind_socket",
    "bounded",
    "clip",
    "loads_bounded",
    "origin_allowed",
    "served_origins",
    "this_host_names",
    "token_ok",
    "ws_protocol",
]
