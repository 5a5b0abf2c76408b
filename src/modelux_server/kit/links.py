"""Links we did not write (Stripe's invoice pages), checked before anyone can click them."""

from __future__ import annotations

from urllib.parse import urlsplit


def web_link(url: str | None) -> str:
    """`url` if it is an absolute http(s) address, else "".

    Escaping keeps a value inside its attribute, but a `javascript:` URL in an
    href runs when clicked.
    """
    if not url:
        return ""
    parts = urlsplit(url)
    return url if parts.scheme in ("https", "http") and parts.netloc else ""
