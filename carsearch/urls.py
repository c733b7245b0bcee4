"""Storage URLs as people see them: the password masked.

Every message, summary, JSON field, log line, dashboard banner and stored study attribute
shows a storage URL through :func:`shown_url`; the URL itself, password and all, only
travels to the code that connects.
"""

from __future__ import annotations

import re

#: What a password becomes, as SQLAlchemy's ``hide_password`` writes it.
MASK = "***"
#: ``scheme://user:`` then the password, up to the ``@`` SQLAlchemy ends it at: the first.
_USERINFO = re.compile(r"^(?P<head>[^:/?#\s]+://[^:/?#@]*:)(?P<password>[^@]*)@")
#: The same for a URL SQLAlchemy cannot read (its scheme may be missing): the password runs
#: to the last ``@``, so one holding ``@`` or ``?`` is masked whole; masking too much is the
#: safe mistake.
_USERINFO_UNREAD = re.compile(
    r"^(?P<head>(?:[^:/?#@\s]+://|(?!\S*://))[^:/?#@\s]*:)(?P<password>.*)@", re.DOTALL
)
#: A password given as a query option (``?password=``, MySQLdb's ``passwd``).
_QUERY_PASSWORD = re.compile(r"(?P<key>[?&](?:password|passwd|pwd)=)[^&#]*", re.IGNORECASE)


def shown_url(url: str) -> str:
    """``url`` with its password masked as ``***``, otherwise as written.

    A URL that does not parse is masked too: anything between ``user:`` (after the scheme,
    if any) and the last ``@`` is taken for a password.

    Example:
        >>> shown_url("postgresql://ann:secret@db.example.com/cars")
        'postgresql://ann:***@db.example.com/cars'
        >>> shown_url("sqlite:///studies/carsearch.db")
        'sqlite:///studies/carsearch.db'
    """
    shown = _QUERY_PASSWORD.sub(rf"\g<key>{MASK}", url)
    pattern = _userinfo_pattern(url)
    return shown if pattern is None else pattern.sub(rf"\g<head>{MASK}@", shown, count=1)


def _userinfo_pattern(url: str) -> re.Pattern[str] | None:
    """The pattern of ``url``'s password: none when SQLAlchemy reads it without one."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return _USERINFO_UNREAD
    if "@" in (parsed.host or ""):  # an ``@`` in the password itself: where it ends is unsure
        return _USERINFO_UNREAD
    return None if parsed.password is None else _USERINFO
