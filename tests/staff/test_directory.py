"""Directory sign-in against a real OpenLDAP slapd (tests/peers/slapd.py): group → role, the
highest role wins, no mapped group refused, LDAP injection, empty passwords, role changes at the
next sign-in, lock-out, both group lookups, direct bind, local accounts first."""

from __future__ import annotations

import subprocess
import threading

import pytest
from ldap3 import SUBTREE, Connection, Server
from sqlalchemy import select

from pacsbridge.audit import AuditEvent
from pacsbridge.errors import ConflictError, StaffSignInFailed
from pacsbridge.staff import accounts, directory, sessions
from pacsbridge.staff.models import StaffUser
from peers.slapd import GROUPS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, Slapd, user_dn
from staff.directory_helpers import (
    PASSWORD,
    SESSION,
    binds_as,
    directory_config,
    events,
    reasons,
    sign_in,
    staff_row,
)


def test_a_member_of_the_admin_group_signs_in_as_admin_on_a_row_without_local_password(
    make_client, slapd: Slapd
) -> None:  # noqa: ANN001
    client = make_client(**directory_config(slapd))
    ctx = client.app.state.context
    uid = slapd.add_user("alice", PASSWORD, ("pacs-admins",))

    answer = sign_in(client, uid)

    assert answer.status_code == 200, answer.text
    assert answer.json()["role"] == "admin" and "manage_users" in answer.json()["permissions"]
    assert client.get("/api/v1/staff/users").status_code == 200
    row = staff_row(ctx, uid)
    assert row is not None and row.source == "directory" and row.password_hash == ""
    assert row.display_name == "Alice Test"
    [signed_in] = events(ctx, "staff.signed_in")
    assert signed_in.actor == uid and signed_in.details["source"] == "directory"


def test_support_group_gives_support_and_the_highest_of_several_mapped_groups_wins(
    make_client, slapd: Slapd
) -> None:  # noqa: ANN001
    client = make_client(**directory_config(slapd))
    support = slapd.add_user("bruno", PASSWORD, ("pacs-support", "radiology"))
    both = slapd.add_user("carla", PASSWORD, ("pacs-support", "pacs-admins"))

    as_support = sign_in(client, support).json()
    as_both = sign_in(client, both).json()

    assert as_support["role"] == "support" and as_support["permissions"] == ["read", "retry"]
    assert as_both["role"] == "admin"


def test_a_user_in_no_mapped_group_is_refused_and_audited_with_the_reason(
    make_client, slapd: Slapd
) -> None:  # noqa: ANN001
    client = make_client(**directory_config(slapd))
    ctx = client.app.state.context
    uid = slapd.add_user("dario", PASSWORD, ("radiology",))

    answer = sign_in(client, uid)

    assert answer.status_code == 401 and answer.json()["error"]["code"] == "staff_sign_in_failed"
    assert reasons(ctx) == ["no_mapped_group"]
    assert events(ctx, "staff.sign_in_failed")[0].actor == uid
    assert staff_row(ctx, uid) is None and "set-cookie" not in answer.headers


def test_a_wrong_directory_password_is_refused_and_audited(make_client, slapd: Slapd) -> None:  # noqa: ANN001
    client = make_client(**directory_config(slapd))
    ctx = client.app.state.context
    uid = slapd.add_user("elena", PASSWORD, ("pacs-admins",))

    answer = sign_in(client, uid, "not the password")

    assert answer.status_code == 401 and answer.json()["error"]["code"] == "staff_sign_in_failed"
    assert reasons(ctx) == ["wrong_password"]
    assert events(ctx, "staff.sign_in_failed")[0].details["failed_attempts"] == 1
    with ctx.sessions() as session:  # neither password is ever written down
        stored = repr(
            [(e.actor, e.message, e.details) for e in session.scalars(select(AuditEvent))]
        )
    assert "not the password" not in stored and PASSWORD not in stored


def test_injection_names_with_a_real_password_match_nobody_though_unescaped_they_would(
    make_settings, slapd: Slapd
) -> None:  # noqa: ANN001
    config = make_settings(**directory_config(slapd)).staff.directory
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
    client = make_client(**directory_config(slapd))
    ctx = client.app.state.context
    uid = slapd.add_user("gino", PASSWORD, ("pacs-admins",))
    names = [f"{uid[:-3]}*", "*", f"{uid})(uid=*", f"{uid}\x00"]

    answers = [sign_in(client, name) for name in names]

    assert [a.status_code for a in answers] == [401] * len(names)
    assert reasons(ctx) == ["invalid_username"] * len(names)
    actors = [e.actor for e in events(ctx, "staff.sign_in_failed")]
    assert actors[-1] == f"{uid}\ufffd"  # a NUL is never stored
    with ctx.sessions() as session:
        assert session.scalars(select(StaffUser)).all() == []


def test_an_empty_password_is_refused_before_the_directory_that_would_accept_it(
    make_client, slapd: Slapd
) -> None:  # noqa: ANN001
    ctx = make_client(**directory_config(slapd)).app.state.context
    uid = slapd.add_user("ivo", PASSWORD, ("pacs-admins",))
    whoami = ["/usr/bin/ldapwhoami", "-x", "-H", slapd.url, "-D", user_dn(uid), "-w", ""]
    accepted = subprocess.run(whoami, capture_output=True, text=True, timeout=30)
    assert accepted.returncode == 0 and accepted.stdout.strip() == "anonymous"
    binds = binds_as(slapd, uid)

    with pytest.raises(StaffSignInFailed):
        sessions.sign_in(ctx, uid, "", "127.0.0.1")
    with pytest.raises(directory.DirectoryRefused) as refused:
        directory.authenticate(ctx.settings.staff.directory, uid, "")

    assert refused.value.reason == "empty_password"
    assert reasons(ctx) == ["empty_password"]
    assert binds_as(slapd, uid) == binds  # neither bound as the person


def test_a_role_change_in_the_directory_applies_at_the_next_sign_in_and_no_group_ends_access(
    make_client, slapd: Slapd
) -> None:  # noqa: ANN001
    client = make_client(**directory_config(slapd))
    ctx = client.app.state.context
    uid = slapd.add_user("luca", PASSWORD, ("pacs-support",))
    assert sign_in(client, uid).json()["role"] == "support"

    slapd.set_groups(uid, add=("pacs-admins",), remove=("pacs-support",))
    promoted = sign_in(client, uid).json()
    slapd.set_groups(uid, add=(), remove=("pacs-admins",))
    removed = sign_in(client, uid)

    assert promoted["role"] == "admin"
    assert removed.status_code == 401 and reasons(ctx) == ["no_mapped_group"]
    assert client.get(SESSION).status_code == 401  # the admin session of before ends too
    changes = [(e.details["was"], e.details["role"]) for e in events(ctx, "staff.role_changed")]
    assert changes == [("support", "admin"), ("admin", "")]


def test_wrong_directory_passwords_lock_the_account_without_asking_the_directory_then_it_opens(
    make_client, slapd: Slapd, clock
) -> None:  # noqa: ANN001
    client = make_client(**directory_config(slapd))
    ctx = client.app.state.context
    uid = slapd.add_user("marta", PASSWORD, ("pacs-admins",))  # never signed in: no row yet

    wrong = [sign_in(client, uid, "wrong password!") for _ in range(5)]
    binds = binds_as(slapd, uid)
    locked = sign_in(client, uid)

    assert [a.status_code for a in wrong] == [401] * 5 and locked.status_code == 401
    assert reasons(ctx) == ["wrong_password"] * 5 + ["locked"]
    assert len(events(ctx, "staff.locked_out")) == 1
    assert binds_as(slapd, uid) == binds  # the locked attempt never reached the directory
    clock.advance(minutes=16)
    assert sign_in(client, uid).json()["role"] == "admin"


def test_groups_found_by_a_member_search_instead_of_memberof(make_client, slapd: Slapd) -> None:  # noqa: ANN001
    client = make_client(**directory_config(slapd, group_attribute="", group_search_base=GROUPS))
    admin = slapd.add_user("nina", PASSWORD, ("pacs-admins",))
    nobody = slapd.add_user("oreste", PASSWORD, ("radiology",))

    assert sign_in(client, admin).json()["role"] == "admin"
    assert sign_in(client, nobody).status_code == 401


def test_direct_bind_with_a_template_and_no_service_account(make_client, slapd: Slapd) -> None:  # noqa: ANN001
    template = f"uid={{username}},{PEOPLE}"
    client = make_client(**directory_config(slapd, bind_dn="", user_bind_template=template))
    uid = slapd.add_user("paola", PASSWORD, ("pacs-support",))

    good = sign_in(client, uid)
    bad = sign_in(client, uid, "wrong password!")

    assert good.status_code == 200 and good.json()["role"] == "support"
    assert bad.status_code == 401
    assert reasons(client.app.state.context) == ["wrong_password"]


def test_a_local_account_is_checked_locally_though_the_directory_has_that_name(
    make_client, slapd: Slapd
) -> None:  # noqa: ANN001
    client = make_client(**directory_config(slapd))
    ctx = client.app.state.context
    uid = slapd.add_user("rita", PASSWORD, ("pacs-admins",))
    accounts.add(ctx, uid, "the local password", "support")

    with_directory_password = sign_in(client, uid)
    with_local_password = sign_in(client, uid, "the local password")

    other_case = sign_in(client, uid.upper())  # the directory would take this case

    assert with_directory_password.status_code == 401
    assert with_local_password.status_code == 200
    assert with_local_password.json()["role"] == "support"
    assert other_case.status_code == 401
    assert reasons(ctx) == ["wrong_password", "local_account"]
    assert staff_row(ctx, uid).source == "local"


def test_a_directory_account_gets_no_local_password_and_a_local_disable_still_stops_it(
    make_client, slapd: Slapd
) -> None:  # noqa: ANN001
    client = make_client(**directory_config(slapd))
    ctx = client.app.state.context
    uid = slapd.add_user("tina", PASSWORD, ("pacs-support",))
    assert sign_in(client, uid).status_code == 200

    with pytest.raises(ConflictError):
        accounts.set_password(ctx, uid, "a local password now")
    accounts.disable(ctx, uid, actor="admin1")

    assert client.get(SESSION).status_code == 401
    assert sign_in(client, uid).status_code == 401
    assert reasons(ctx) == ["disabled"]
    assert staff_row(ctx, uid).password_hash == ""


def test_names_are_case_folded_to_one_row_and_directory_rows_fail_once_it_is_turned_off(
    make_client, make_settings, slapd: Slapd
) -> None:  # noqa: ANN001
    client = make_client(**directory_config(slapd))
    ctx = client.app.state.context
    uid = slapd.add_user("ugo", PASSWORD, ("pacs-support",))

    assert sign_in(client, uid.upper()).json()["username"] == uid
    assert sign_in(client, uid).status_code == 200
    with ctx.sessions() as session:
        assert [u.username for u in session.scalars(select(StaffUser))] == [uid]
    off = make_client(make_settings())  # same database, directory sign-in off

    assert sign_in(off, uid).status_code == 401
    assert reasons(ctx) == ["directory_disabled"]


def test_simultaneous_first_sign_ins_of_one_person_both_succeed_on_one_row(
    make_client, slapd: Slapd
) -> None:  # noqa: ANN001
    ctx = make_client(**directory_config(slapd)).app.state.context
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
