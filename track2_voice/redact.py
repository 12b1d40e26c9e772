"""URLs as a record or a log line may keep them: credentials replaced by ``***``.

Why: a server URL often carries its credential in the query (``?token=...``, as the model
server's and Kyutai's clients send it), and a session record or a log is evidence that gets
shared (pasted into a bug report, copied off the machine). The URL with the credential is
still the one to connect to; only what is written down is redacted.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "***"
# query parameter names that carry a credential (matched anywhere in the name, any case):
# token, access_token, secret, key, api_key, password, passwd, pwd, auth, sig, signature, ...
SECRET_WORDS = ("token", "secret", "key", "pass", "pwd", "auth", "sig", "cred")
SECRET_PARAM = re.compile("|".join(SECRET_WORDS), re.IGNORECASE)
# the same parameters inside any text (a library's debug line with the request it sent)
_NAME = r"[^=&\s\"'?#]*"
SECRET_IN_TEXT = re.compile(
    rf"([?&]{_NAME}(?:{'|'.join(SECRET_WORDS)}){_NAME}=)[^&\s\"'#]+", re.IGNORECASE
)


def redact_url(url: str) -> str:
    """``url`` with the values of credential-like query parameters and the password of its
    user part replaced by ``***``; the rest (host, path, sampling parameters) unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<a URL that does not parse>"
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:{REDACTED}@{host}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(SECRET_PARAM.search(k) for k, _ in pairs):
        query = urlencode(
            [(k, REDACTED if SECRET_PARAM.search(k) else v) for k, v in pairs], safe="*"
        )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def redact_text(text: str) -> str:
    """``text`` with the value of every credential-like ``?name=value`` / ``&name=value`` in it
    replaced by ``***`` (for log lines, whoever wrote them)."""
    return SECRET_IN_TEXT.sub(rf"\g<1>{REDACTED}", text) if "=" in text else text
