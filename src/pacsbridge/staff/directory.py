"""The directory's side of a staff sign-in: Active Directory or OpenLDAP over LDAP v3.

Why each step (docs/staff.md, "Directory sign-in"):

* the user name goes into filters only through RFC 4515 escaping (``escape_filter_chars``),
  and into a bind DN only through RFC 4514 escaping (``escape_rdn``): ``al*`` or
  ``x)(uid=*`` match nobody instead of someone, so no name can sign in as another person;
* an empty password is refused before the directory is asked: a simple bind with a DN and no
  password is an *unauthenticated* bind (RFC 4513 §5.1.2), which many servers answer with
  success;
* the password is checked by binding as the person (never by comparing attributes), then the
  groups give the role: the highest of ``groups_to_roles`` wins, and no mapped group means no
  role (the caller refuses);
* anything the network or the server does wrong is :class:`DirectoryUnavailable` with the
  library's exception type as detail, never a crash, never the password.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

from ldap3 import BASE, NONE, SIMPLE, SUBTREE, Connection, Server, Tls
from ldap3.abstract.entry import Entry
from ldap3.core.exceptions import LDAPException, LDAPInvalidDnError
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn

from pacsbridge.errors import DirectoryUnavailable
from pacsbridge.settings.operations import DirectorySettings
from pacsbridge.staff.roles import Role

#: RFC 4511 result codes we tell apart
SUCCESS, SIZE_LIMIT_EXCEEDED, INVALID_CREDENTIALS = 0, 4, 49
#: the higher a role here, the more it may (the highest of a person's groups wins)
RANK = {Role.SUPPORT: 1, Role.ADMIN: 2}


class DirectoryRefused(Exception):
    """The directory answered, and the answer is no: ``reason`` goes to the audit log.

    ``known`` is true when the directory showed that the entry exists (a search found it),
    so the caller may count the failure against that person (lock-out).
    """

    def __init__(self, reason: str, known: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.known = known


@dataclass(frozen=True)
class DirectoryAccount:
    """Who the directory says signed in; ``role`` is "" when no group of theirs is mapped."""

    dn: str
    display_name: str
    groups: tuple[str, ...]
    role: str


def authenticate(settings: DirectorySettings, username: str, password: str) -> DirectoryAccount:
    """The person's entry, groups and role if the password binds; DirectoryRefused if not."""
    if not password:
        raise DirectoryRefused("empty_password")
    if settings.bind_dn:
        return _through_service_account(settings, username, password)
    return _by_direct_bind(settings, username, password)


def find_dn(settings: DirectorySettings, username: str) -> str | None:
    """The DN the service account finds for this user name, None when none or several."""
    with _bound(settings, settings.bind_dn, settings.bind_password.get_secret_value()) as conn:
        try:
            return _entry(conn, settings, username).entry_dn
        except DirectoryRefused:
            return None


def check(settings: DirectorySettings) -> str:
    """What ``pacsbridge check`` reports: the service account binds and sees the user base."""
    if not settings.bind_dn:
        with _connection(settings, "", ""):
            return f"{settings.url} answers (direct bind: no service account to try)"
    with _bound(settings, settings.bind_dn, settings.bind_password.get_secret_value()) as conn:
        _search(conn, settings.user_search_base, "(objectClass=*)", [], scope=BASE)
    return f"{settings.url}: service account binds, user_search_base found"


def role_of(settings: DirectorySettings, groups: tuple[str, ...]) -> str:
    """The highest role among the groups mapped in ``groups_to_roles``; "" when none is."""
    mapped = {normal_dn(dn): Role(role) for dn, role in settings.groups_to_roles.items()}
    roles = [mapped[normal_dn(dn)] for dn in groups if normal_dn(dn) in mapped]
    return str(max(roles, key=RANK.__getitem__)) if roles else ""


def normal_dn(dn: str) -> str:
    """A DN as compared: attribute names and values case-folded, no spaces around separators
    (RFC 4514 DNs differ in case and spacing; directories match them case-insensitively)."""
    try:
        parts = parse_dn(dn, strip=True)
    except LDAPInvalidDnError:
        return dn.strip().casefold()
    return ",".join(f"{name.casefold()}={value.casefold()}" for name, value, _ in parts)


def _through_service_account(
    settings: DirectorySettings, username: str, password: str
) -> DirectoryAccount:
    with _bound(settings, settings.bind_dn, settings.bind_password.get_secret_value()) as conn:
        entry = _entry(conn, settings, username)
        try:
            with _bound(settings, entry.entry_dn, password, as_user=True):
                pass
        except DirectoryRefused as refused:
            raise DirectoryRefused(refused.reason, known=True) from None
        return _account(conn, settings, entry)


def _by_direct_bind(settings: DirectorySettings, username: str, password: str) -> DirectoryAccount:
    who = settings.user_bind_template.replace("{username}", escape_rdn(username))
    with _bound(settings, who, password, as_user=True) as conn:
        return _account(conn, settings, _entry(conn, settings, username))


def _account(conn: Connection, settings: DirectorySettings, entry: Entry) -> DirectoryAccount:
    groups = _groups(conn, settings, entry)
    name = _first(entry, settings.display_name_attribute)
    return DirectoryAccount(entry.entry_dn, name, groups, role_of(settings, groups))


def _entry(conn: Connection, settings: DirectorySettings, username: str) -> Entry:
    """The one entry the user filter finds; DirectoryRefused when none or several."""
    query = settings.user_filter.replace("{username}", escape_filter_chars(username))
    wanted = [a for a in (settings.display_name_attribute, settings.group_attribute) if a]
    _search(conn, settings.user_search_base, query, wanted, size_limit=2)
    if not conn.entries:
        raise DirectoryRefused("unknown_user")
    if len(conn.entries) > 1:
        raise DirectoryRefused("ambiguous_user", known=True)
    return conn.entries[0]


def _groups(conn: Connection, settings: DirectorySettings, entry: Entry) -> tuple[str, ...]:
    if settings.group_attribute:
        return tuple(_values(entry, settings.group_attribute))
    query = settings.group_filter.replace("{dn}", escape_filter_chars(entry.entry_dn))
    _search(conn, settings.group_search_base, query, [])
    return tuple(found.entry_dn for found in conn.entries)


def _values(entry: Entry, attribute: str) -> list[str]:
    try:
        return [str(value) for value in entry[attribute].values]
    except (KeyError, LDAPException):
        return []


def _first(entry: Entry, attribute: str) -> str:
    values = _values(entry, attribute) if attribute else []
    return values[0][:200] if values else ""


def _search(
    conn: Connection,
    base: str,
    query: str,
    attributes: list[str],
    scope: str = SUBTREE,
    size_limit: int = 0,
) -> None:
    """Search (the entries land in ``conn.entries``); any failure but a size limit reached
    is DirectoryUnavailable: a wrong base or filter in the settings, a timeout."""
    _call(lambda: conn.search(base, query, scope, attributes=attributes, size_limit=size_limit))
    if conn.result.get("result") not in (SUCCESS, SIZE_LIMIT_EXCEEDED):
        raise DirectoryUnavailable(f"search: {conn.result.get('description')}")


@contextmanager
def _bound(
    settings: DirectorySettings, who: str, password: str, as_user: bool = False
) -> Iterator[Connection]:
    """A connection bound as ``who``: a refused user bind is DirectoryRefused (a wrong
    password); a refused service account is DirectoryUnavailable (our configuration)."""
    if not password:
        raise (
            DirectoryRefused("empty_password")
            if as_user
            else DirectoryUnavailable("service account without a password")
        )
    with _connection(settings, who, password) as conn:
        if not _call(conn.bind):
            code, description = conn.result.get("result"), conn.result.get("description")
            if not as_user:
                raise DirectoryUnavailable(f"service account bind: {description}")
            raise DirectoryRefused(
                "wrong_password" if code == INVALID_CREDENTIALS else "directory_refused"
            )
        yield conn


@contextmanager
def _connection(settings: DirectorySettings, who: str, password: str) -> Iterator[Connection]:
    """An open connection (StartTLS done when asked), closed on leaving."""
    server = Server(
        settings.url,
        connect_timeout=settings.connect_timeout_seconds,
        tls=_tls(settings),
        get_info=NONE,
    )
    conn = Connection(
        server,
        user=who or None,
        password=password or None,
        authentication=SIMPLE if who else None,
        receive_timeout=settings.timeout_seconds,
        read_only=True,
        raise_exceptions=False,
        auto_referrals=False,  # AD's search references name other servers: never follow them
    )
    try:
        _call(conn.open)
        if settings.start_tls and not _call(conn.start_tls):
            raise DirectoryUnavailable(f"StartTLS: {conn.result.get('description')}")
        yield conn
    finally:
        with suppress(LDAPException, OSError):
            conn.unbind()


def _call(step: Callable[[], Any]) -> Any:
    """One ldap3 call, its exceptions turned into DirectoryUnavailable (type only: the
    library's messages may quote the bind DN)."""
    try:
        return step()
    except (LDAPException, OSError) as error:  # ssl.SSLError is an OSError
        raise DirectoryUnavailable(type(error).__name__) from error


def _tls(settings: DirectorySettings) -> Tls:
    """Certificate and host name always checked (RFC 4513 §3.1.3), against ``ca_file`` or the
    system's CAs; the standard library's default context (no version given) sets the
    protocol floor."""
    host = urlsplit(settings.url).hostname or ""
    return Tls(
        validate=ssl.CERT_REQUIRED,
        ca_certs_file=settings.ca_file or None,
        sni=None if _is_address(host) else host,  # RFC 6066 §3: names only, never addresses
    )


def _is_address(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return False
    return True
