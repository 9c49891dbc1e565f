"""Directory sign-in against a real OpenLDAP slapd (tests/peers/slapd.py): group → role, the
highest role wins, no mapped group refused, LDAP injection, empty passwords, the directory
down or silent, role changes at the next sign-in, lock-out, both group lookups, direct bind,
and ``pacsbridge check``."""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time
from typing import Any

import pytest
from ldap3 import SUBTREE, Connection, Server
from pydantic import ValidationError
from sqlalchemy import select

from pacsbridge import checks
from pacsbridge.audit import AuditEvent
from pacsbridge.errors import ConflictError, DirectoryUnavailable, StaffSignInFailed
from pacsbridge.settings.operations import DirectorySettings
from pacsbridge.staff import accounts, directory, sessions
from pacsbridge.staff.models import StaffUser
from peers.dicom import free_port
from peers.slapd import GROUPS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, Slapd, group_dn, user_dn

PASSWORD = "directory password 1"
SESSION = "/api/v1/staff/session"
ROLES = {group_dn("pacs-admins"): "admin", group_dn("pacs-support"): "support"}


def _directory(server: Slapd, **extra: Any) -> dict[str, Any]:
    config = {
        "enabled": True,
        "url": server.url,
        "bind_dn": SERVICE_DN,
        "bind_password": SERVICE_PASSWORD,
        "user_search_base": PEOPLE,
        "groups_to_roles": ROLES,
        "connect_timeout_seconds": 2,
        "timeout_seconds": 2,
        **extra,
    }
    return {"staff": {"directory": config}}


def _events(ctx: Any, kind: str) -> list[AuditEvent]:
    with ctx.sessions() as session:
        query = select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)
        return list(session.scalars(query))


def _reasons(ctx: Any) -> list[str]:
    return [e.details["reason"] for e in _events(ctx, "staff.sign_in_failed")]


def _row(ctx: Any, username: str) -> StaffUser | None:
    with ctx.sessions() as session:
        return session.scalars(select(StaffUser).where(StaffUser.username == username)).first()


def _sign_in(client: Any, username: str, password: str = PASSWORD) -> Any:
    return client.post(SESSION, json={"username": username, "password": password})


def _binds(server: Slapd, uid: str) -> int:
    """How many binds as this person slapd has logged so far."""
    return server.settled_log().count(f'BIND dn="{user_dn(uid)}"')


def test_a_member_of_the_admin_group_signs_in_as_admin_on_a_row_without_local_password(
    make_client, slapd: Slapd
) -> None:  # noqa: ANN001
    client = make_client(**_directory(slapd))
    ctx = client.app.state.context
    uid = slapd.add_user("alice", PASSWORD, ("pacs-admins",))

    answer = _sign_in(client, uid)

    assert answer.status_code == 200, answer.text
    assert answer.json()["role"] == "admin" and "manage_users" in answer.json()["permissions"]
    assert client.get("/api/v1/staff/users").status_code == 200
    row = _row(ctx, uid)
    assert row is not None and row.source == "directory" and row.password_hash == ""
    assert row.display_name == "Alice Test"
    [signed_in] = _events(ctx, "staff.signed_in")
    assert signed_in.actor == uid and signed_in.details["source"] == "directory"


def test_support_group_gives_support_and_the_highest_of_several_mapped_groups_wins(
    make_client, slapd: Slapd
) -> None:  # noqa: ANN001
    client = make_client(**_directory(slapd))
    support = slapd.add_user("bruno", PASSWORD, ("pacs-support", "radiology"))
    both = slapd.add_user("carla", PASSWORD, ("pacs-support", "pacs-admins"))

    as_support = _sign_in(client, support).json()
    as_both = _sign_in(client, both).json()

    assert as_support["role"] == "support" and as_support["permissions"] == ["read", "retry"]
    assert as_both["role"] == "admin"


def test_a_user_in_no_mapped_group_is_refused_and_audited_with_the_reason(
    make_client, slapd: Slapd
) -> None:  # noqa: ANN001
    client = make_client(**_directory(slapd))
    ctx = client.app.state.context
    uid = slapd.add_user("dario", PASSWORD, ("radiology",))

    answer = _sign_in(client, uid)

    assert answer.status_code == 401 and answer.json()["error"]["code"] == "staff_sign_in_failed"
    assert _reasons(ctx) == ["no_mapped_group"]
    assert _events(ctx, "staff.sign_in_failed")[0].actor == uid
    assert _row(ctx, uid) is None and "set-cookie" not in answer.headers


def test_a_wrong_directory_password_is_refused_and_audited(make_client, slapd: Slapd) -> None:  # noqa: ANN001
    client = make_client(**_directory(slapd))
    ctx = client.app.state.context
    uid = slapd.add_user("elena", PASSWORD, ("pacs-admins",))

    answer = _sign_in(client, uid, "not the password")

    assert answer.status_code == 401 and answer.json()["error"]["code"] == "staff_sign_in_failed"
    assert _reasons(ctx) == ["wrong_password"]
    assert _events(ctx, "staff.sign_in_failed")[0].details["failed_attempts"] == 1
    with ctx.sessions() as session:  # neither password is ever written down
        stored = repr(
            [(e.actor, e.message, e.details) for e in session.scalars(select(AuditEvent))]
        )
    assert "not the password" not in stored and PASSWORD not in stored


def test_injection_names_with_a_real_password_match_nobody_though_unescaped_they_would(
    make_settings, slapd: Slapd
) -> None:  # noqa: ANN001
    config = make_settings(**_directory(slapd)).staff.directory
    uid = slapd.add_user("fabio", PASSWORD, ("pacs-admins",))
    prefix = uid[:-3]
    with Connection(Server(slapd.url), SERVICE_DN, SERVICE_PASSWORD, auto_bind=True) as raw:
        raw.search(PEOPLE, f"(uid={prefix}*)", SUBTREE)  # what an unescaped filter would do
        assert [e.entry_dn for e in raw.entries] == [user_dn(uid)]
    names = [f"{prefix}*", "*", f"{uid})(uid=*", f"*)(|(uid={uid}", f"{uid}\x00", f"{uid}\x00*"]

    for name in names:
        with pytest.raises(directory.DirectoryRefused) as refused:
            directory.authenticate(config, name, PASSWORD)
        assert refused.value.reason == "unknown_user", name
        assert directory.find_dn(config, name) is None
    assert directory.authenticate(config, uid, PASSWORD).role == "admin"  # the real name works


def test_injection_names_are_refused_at_sign_in_audited_and_make_no_row(
    make_client, slapd: Slapd
) -> None:  # noqa: ANN001
    client = make_client(**_directory(slapd))
    ctx = client.app.state.context
    uid = slapd.add_user("gino", PASSWORD, ("pacs-admins",))
    names = [f"{uid[:-3]}*", "*", f"{uid})(uid=*", f"{uid}\x00"]

    answers = [_sign_in(client, name) for name in names]

    assert [a.status_code for a in answers] == [401] * len(names)
    assert _reasons(ctx) == ["invalid_username"] * len(names)
    actors = [e.actor for e in _events(ctx, "staff.sign_in_failed")]
    assert actors[-1] == f"{uid}\ufffd"  # a NUL is never stored
    with ctx.sessions() as session:
        assert session.scalars(select(StaffUser)).all() == []


def test_an_empty_password_is_refused_before_the_directory_that_would_accept_it(
    make_client, slapd: Slapd
) -> None:  # noqa: ANN001
    ctx = make_client(**_directory(slapd)).app.state.context
    uid = slapd.add_user("ivo", PASSWORD, ("pacs-admins",))
    whoami = ["/usr/bin/ldapwhoami", "-x", "-H", slapd.url, "-D", user_dn(uid), "-w", ""]
    accepted = subprocess.run(whoami, capture_output=True, text=True, timeout=30)
    assert accepted.returncode == 0 and accepted.stdout.strip() == "anonymous"
    binds = _binds(slapd, uid)

    with pytest.raises(StaffSignInFailed):
        sessions.sign_in(ctx, uid, "", "127.0.0.1")
    with pytest.raises(directory.DirectoryRefused) as refused:
        directory.authenticate(ctx.settings.staff.directory, uid, "")

    assert refused.value.reason == "empty_password"
    assert _reasons(ctx) == ["empty_password"]
    assert _binds(slapd, uid) == binds  # neither bound as the person


def test_directory_down_is_a_clear_audited_error_and_a_local_admin_still_signs_in(
    make_client, slapd: Slapd
) -> None:  # noqa: ANN001
    client = make_client(**_directory(slapd, url=f"ldap://127.0.0.1:{free_port()}"))
    ctx = client.app.state.context
    accounts.add(ctx, "admin.locale", "local admin password", "admin")

    down = _sign_in(client, "someone")
    local = _sign_in(client, "admin.locale", "local admin password")

    assert down.status_code == 503, down.text
    error = down.json()["error"]
    assert error["code"] == "directory_unavailable"
    assert error["message"].startswith("Directory non raggiungibile")
    [failed] = _events(ctx, "staff.sign_in_failed")
    assert failed.actor == "someone" and failed.details["reason"] == "directory_unavailable"
    assert failed.details["detail"] == "LDAPSocketOpenError"
    assert local.status_code == 200 and local.json()["role"] == "admin"


def test_a_silent_directory_counts_as_down_within_its_timeout(make_settings) -> None:  # noqa: ANN001
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"ldap://127.0.0.1:{silent.getsockname()[1]}"
        config = DirectorySettings(
            **{**_directory_values(url), "timeout_seconds": 1, "connect_timeout_seconds": 1}
        )
        started = time.monotonic()
        with pytest.raises(DirectoryUnavailable):
            directory.authenticate(config, "someone", PASSWORD)
        elapsed = time.monotonic() - started

    assert elapsed < 4


def _directory_values(url: str) -> dict[str, Any]:
    return {
        "enabled": True,
        "url": url,
        "bind_dn": SERVICE_DN,
        "bind_password": SERVICE_PASSWORD,
        "user_search_base": PEOPLE,
        "groups_to_roles": ROLES,
    }


def test_a_role_change_in_the_directory_applies_at_the_next_sign_in_and_no_group_ends_access(
    make_client, slapd: Slapd
) -> None:  # noqa: ANN001
    client = make_client(**_directory(slapd))
    ctx = client.app.state.context
    uid = slapd.add_user("luca", PASSWORD, ("pacs-support",))
    assert _sign_in(client, uid).json()["role"] == "support"

    slapd.set_groups(uid, add=("pacs-admins",), remove=("pacs-support",))
    promoted = _sign_in(client, uid).json()
    slapd.set_groups(uid, add=(), remove=("pacs-admins",))
    removed = _sign_in(client, uid)

    assert promoted["role"] == "admin"
    assert removed.status_code == 401 and _reasons(ctx) == ["no_mapped_group"]
    assert client.get(SESSION).status_code == 401  # the admin session of before ends too
    changes = [(e.details["was"], e.details["role"]) for e in _events(ctx, "staff.role_changed")]
    assert changes == [("support", "admin"), ("admin", "")]


def test_wrong_directory_passwords_lock_the_account_without_asking_the_directory_then_it_opens(
    make_client, slapd: Slapd, clock
) -> None:  # noqa: ANN001
    client = make_client(**_directory(slapd))
    ctx = client.app.state.context
    uid = slapd.add_user("marta", PASSWORD, ("pacs-admins",))  # never signed in: no row yet

    wrong = [_sign_in(client, uid, "wrong password!") for _ in range(5)]
    binds = _binds(slapd, uid)
    locked = _sign_in(client, uid)

    assert [a.status_code for a in wrong] == [401] * 5 and locked.status_code == 401
    assert _reasons(ctx) == ["wrong_password"] * 5 + ["locked"]
    assert len(_events(ctx, "staff.locked_out")) == 1
    assert _binds(slapd, uid) == binds  # the locked attempt never reached the directory
    clock.advance(minutes=16)
    assert _sign_in(client, uid).json()["role"] == "admin"


def test_groups_found_by_a_member_search_instead_of_memberof(make_client, slapd: Slapd) -> None:  # noqa: ANN001
    client = make_client(**_directory(slapd, group_attribute="", group_search_base=GROUPS))
    admin = slapd.add_user("nina", PASSWORD, ("pacs-admins",))
    nobody = slapd.add_user("oreste", PASSWORD, ("radiology",))

    assert _sign_in(client, admin).json()["role"] == "admin"
    assert _sign_in(client, nobody).status_code == 401


def test_direct_bind_with_a_template_and_no_service_account(make_client, slapd: Slapd) -> None:  # noqa: ANN001
    template = f"uid={{username}},{PEOPLE}"
    client = make_client(**_directory(slapd, bind_dn="", user_bind_template=template))
    uid = slapd.add_user("paola", PASSWORD, ("pacs-support",))

    good = _sign_in(client, uid)
    bad = _sign_in(client, uid, "wrong password!")

    assert good.status_code == 200 and good.json()["role"] == "support"
    assert bad.status_code == 401
    assert _reasons(client.app.state.context) == ["wrong_password"]


def test_a_local_account_is_checked_locally_though_the_directory_has_that_name(
    make_client, slapd: Slapd
) -> None:  # noqa: ANN001
    client = make_client(**_directory(slapd))
    ctx = client.app.state.context
    uid = slapd.add_user("rita", PASSWORD, ("pacs-admins",))
    accounts.add(ctx, uid, "the local password", "support")

    with_directory_password = _sign_in(client, uid)
    with_local_password = _sign_in(client, uid, "the local password")

    other_case = _sign_in(client, uid.upper())  # the directory would take this case

    assert with_directory_password.status_code == 401
    assert with_local_password.status_code == 200
    assert with_local_password.json()["role"] == "support"
    assert other_case.status_code == 401
    assert _reasons(ctx) == ["wrong_password", "local_account"]
    assert _row(ctx, uid).source == "local"


def test_pacsbridge_check_binds_the_service_account_and_reports_failures(
    make_settings, slapd: Slapd
) -> None:  # noqa: ANN001
    good = checks.staff_directory(make_settings(**_directory(slapd)))
    wrong = checks.staff_directory(make_settings(**_directory(slapd, bind_password="wrong")))
    down = checks.staff_directory(
        make_settings(**_directory(slapd, url=f"ldap://127.0.0.1:{free_port()}"))
    )

    direct = checks.staff_directory(
        make_settings(
            **_directory(slapd, bind_dn="", user_bind_template=f"uid={{username}},{PEOPLE}")
        )
    )

    assert good[0] == "staff directory" and good[1] is True, good
    assert direct[1] is True and "direct bind" in direct[2]
    assert "in clear" in good[2]
    assert wrong[1] is False and "invalidCredentials" in wrong[2]
    assert down[1] is False and "LDAPSocketOpenError" in down[2]


def test_enabled_directory_settings_must_be_complete() -> None:
    with pytest.raises(ValidationError, match="ldap:// or ldaps://"):
        DirectorySettings(**{**_directory_values("http://x"), "enabled": True})
    with pytest.raises(ValidationError, match="groups_to_roles"):
        DirectorySettings(**{**_directory_values("ldap://x"), "groups_to_roles": {}})
    assert DirectorySettings().enabled is False  # off by default


@pytest.mark.parametrize("encryption", ["start_tls", "ldaps"])
def test_tls_checks_the_certificate_against_the_ca_file_and_refuses_an_unknown_ca(
    make_settings, slapd: Slapd, encryption: str
) -> None:  # noqa: ANN001
    uid = slapd.add_user("sara", PASSWORD, ("pacs-admins",))
    url = slapd.ldaps_url if encryption == "ldaps" else slapd.url
    start_tls = encryption == "start_tls"
    trusted = _directory(slapd, url=url, start_tls=start_tls, ca_file=str(slapd.ca_file))
    unknown_ca = _directory(slapd, url=url, start_tls=start_tls)  # the system's CAs only

    signed_in = directory.authenticate(make_settings(**trusted).staff.directory, uid, PASSWORD)
    with pytest.raises(DirectoryUnavailable):
        directory.authenticate(make_settings(**unknown_ca).staff.directory, uid, PASSWORD)
    checked = checks.staff_directory(make_settings(**trusted))

    assert signed_in.role == "admin"
    assert checked[1] is True and "in clear" not in checked[2]
    log = slapd.settled_log()
    binds = re.findall(rf'BIND dn="{re.escape(user_dn(uid))}" mech=SIMPLE .*ssf=(\d+)', log)
    assert binds and all(int(ssf) >= 128 for ssf in binds)  # the password crossed encrypted


def test_a_directory_account_gets_no_local_password_and_a_local_disable_still_stops_it(
    make_client, slapd: Slapd
) -> None:  # noqa: ANN001
    client = make_client(**_directory(slapd))
    ctx = client.app.state.context
    uid = slapd.add_user("tina", PASSWORD, ("pacs-support",))
    assert _sign_in(client, uid).status_code == 200

    with pytest.raises(ConflictError):
        accounts.set_password(ctx, uid, "a local password now")
    accounts.disable(ctx, uid, actor="admin1")

    assert client.get(SESSION).status_code == 401
    assert _sign_in(client, uid).status_code == 401
    assert _reasons(ctx) == ["disabled"]
    assert _row(ctx, uid).password_hash == ""


def test_names_are_case_folded_to_one_row_and_directory_rows_fail_once_it_is_turned_off(
    make_client, make_settings, slapd: Slapd
) -> None:  # noqa: ANN001
    client = make_client(**_directory(slapd))
    ctx = client.app.state.context
    uid = slapd.add_user("ugo", PASSWORD, ("pacs-support",))

    assert _sign_in(client, uid.upper()).json()["username"] == uid
    assert _sign_in(client, uid).status_code == 200
    with ctx.sessions() as session:
        assert [u.username for u in session.scalars(select(StaffUser))] == [uid]
    off = make_client(make_settings())  # same database, directory sign-in off

    assert _sign_in(off, uid).status_code == 401
    assert _reasons(ctx) == ["directory_disabled"]


def test_simultaneous_first_sign_ins_of_one_person_both_succeed_on_one_row(
    make_client, slapd: Slapd
) -> None:  # noqa: ANN001
    ctx = make_client(**_directory(slapd)).app.state.context
    uids = [slapd.add_user("vera", PASSWORD, ("pacs-support",)) for _ in range(3)]
    outcomes: list[str] = []

    def sign_in(uid: str, start: threading.Barrier) -> None:
        start.wait()
        try:
            outcomes.append(sessions.sign_in(ctx, uid, PASSWORD, "127.0.0.1")[1].role)
        except Exception as error:  # noqa: BLE001 - what went wrong is the assertion's message
            outcomes.append(repr(error))

    for uid in uids:
        start = threading.Barrier(2)
        pair = [threading.Thread(target=sign_in, args=(uid, start)) for _ in range(2)]
        for thread in pair:
            thread.start()
        for thread in pair:
            thread.join(timeout=30)

    assert outcomes == ["support"] * 6
    with ctx.sessions() as session:
        assert sorted(u.username for u in session.scalars(select(StaffUser))) == sorted(uids)


def test_a_user_search_base_the_directory_lacks_is_unavailable_not_a_crash(
    make_client, slapd: Slapd
) -> None:  # noqa: ANN001
    missing = f"ou=nowhere,{PEOPLE}"
    client = make_client(**_directory(slapd, user_search_base=missing))

    answer = _sign_in(client, "someone")
    checked = checks.staff_directory(client.app.state.context.settings)

    assert answer.status_code == 503 and answer.json()["error"]["code"] == "directory_unavailable"
    [failed] = _events(client.app.state.context, "staff.sign_in_failed")
    assert failed.details["detail"] == "search: noSuchObject"
    assert checked[1] is False and "noSuchObject" in checked[2]


def test_tls_refuses_a_certificate_for_another_host_name(make_settings, slapd: Slapd) -> None:  # noqa: ANN001
    uid = slapd.add_user("zeno", PASSWORD, ("pacs-admins",))
    port = slapd.ldaps_url.rsplit(":", 1)[1]
    other_name = f"ldaps://localhost:{port}"  # 127.0.0.1 too, but the certificate names only the IP
    config = _directory(slapd, url=other_name, ca_file=str(slapd.ca_file))
    handshakes = slapd.settled_log().count("TLS established")

    with pytest.raises(DirectoryUnavailable):
        directory.authenticate(make_settings(**config).staff.directory, uid, PASSWORD)

    # the handshake with our CA succeeded: what refused the server is its name
    deadline = time.monotonic() + 10
    while slapd.settled_log().count("TLS established") <= handshakes:
        assert time.monotonic() < deadline, "slapd logged no TLS handshake"
        time.sleep(0.05)
    assert _binds(slapd, uid) == 0
