"""Staff accounts end to end: the CLI, argon2 hashes, sign-in with a cookie session, CSRF on
state changes, lock-out after repeated failures, roles, and an audit event per action."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import select

from pacsbridge.audit import AuditEvent
from pacsbridge.staff import accounts
from pacsbridge.staff.models import StaffSession, StaffUser
from pacsbridge.staff.roles import Permission, allows

PASSWORD = "correct horse battery"
SESSION = "/api/v1/staff/session"


def _events(ctx: Any, kind: str) -> list[AuditEvent]:
    with ctx.sessions() as session:
        query = select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)
        return list(session.scalars(query))


def _sign_in(client: Any, username: str, password: str = PASSWORD) -> Any:
    return client.post(SESSION, json={"username": username, "password": password})


def test_roles_support_reads_and_retries_admin_also_aborts_purges_and_manages_users() -> None:
    assert allows("support", Permission.READ) and allows("support", Permission.RETRY)
    for permission in (Permission.ABORT, Permission.PURGE, Permission.MANAGE_USERS):
        assert not allows("support", permission) and allows("admin", permission)
    assert not allows("operator", Permission.READ)


def test_a_password_is_stored_as_an_argon2id_hash_that_verifies(make_client) -> None:  # noqa: ANN001
    ctx = make_client().app.state.context
    accounts.add(ctx, "m.rossi", PASSWORD, "support", "Mario Rossi", actor="admin1")

    with ctx.sessions() as session:
        user = session.scalars(select(StaffUser)).one()
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert PasswordHasher().verify(user.password_hash, PASSWORD)
    [added] = _events(ctx, "staff.user_added")
    assert added.actor == "admin1" and added.details == {"username": "m.rossi", "role": "support"}


def test_sign_in_sets_an_httponly_strict_cookie_and_the_session_needs_csrf_to_end(
    make_client,  # noqa: ANN001
) -> None:
    client = make_client()
    ctx = client.app.state.context
    accounts.add(ctx, "m.rossi", PASSWORD, "support")

    answer = _sign_in(client, "m.rossi")

    assert answer.status_code == 200, answer.text
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    me = client.get(SESSION).json()
    assert me["username"] == "m.rossi" and me["permissions"] == ["read", "retry"]
    with ctx.sessions() as session:  # the database holds only the token's hash
        stored = session.scalars(select(StaffSession.token_hash)).one()
    assert stored not in answer.headers["set-cookie"]
    assert client.delete(SESSION).status_code == 403  # no CSRF token
    assert client.delete(SESSION, headers={"X-CSRF-Token": "0" * 64}).status_code == 403
    ended = client.delete(SESSION, headers={"X-CSRF-Token": me["csrf_token"]})
    assert ended.status_code == 200
    client.cookies.clear()
    assert client.get(SESSION).status_code == 401
    assert [e.actor for e in _events(ctx, "staff.signed_in")] == ["m.rossi"]
    assert [e.actor for e in _events(ctx, "staff.signed_out")] == ["m.rossi"]


def test_sign_in_refuses_a_form_post_so_no_site_can_sign_a_browser_in(make_client) -> None:  # noqa: ANN001
    client = make_client()
    accounts.add(client.app.state.context, "m.rossi", PASSWORD, "support")

    answer = client.post(SESSION, data={"username": "m.rossi", "password": PASSWORD})

    assert answer.status_code == 422 and "set-cookie" not in answer.headers


def test_five_wrong_passwords_lock_the_account_then_it_opens_after_the_lockout(
    make_client, clock
) -> None:  # noqa: ANN001
    client = make_client()
    ctx = client.app.state.context
    accounts.add(ctx, "m.rossi", PASSWORD, "support")

    wrong = [_sign_in(client, "m.rossi", "wrong password!") for _ in range(5)]
    locked = _sign_in(client, "m.rossi")  # the right password, but locked

    assert all(a.status_code == 401 for a in wrong)
    assert locked.status_code == 401
    assert (
        locked.json()["error"]["message"] == wrong[0].json()["error"]["message"]
    )  # no hint it is locked
    assert locked.json()["error"]["code"] == "staff_sign_in_failed"
    reasons = [e.details["reason"] for e in _events(ctx, "staff.sign_in_failed")]
    assert reasons == ["wrong_password"] * 5 + ["locked"]
    assert len(_events(ctx, "staff.locked_out")) == 1
    clock.advance(minutes=16)
    assert _sign_in(client, "m.rossi").status_code == 200


def test_an_unknown_user_gets_the_same_answer_and_is_audited(make_client) -> None:  # noqa: ANN001
    client = make_client()

    answer = _sign_in(client, "nobody")

    assert answer.status_code == 401 and answer.json()["error"]["code"] == "staff_sign_in_failed"
    [failed] = _events(client.app.state.context, "staff.sign_in_failed")
    assert failed.actor == "nobody" and failed.details["reason"] == "unknown_user"


def test_disabling_an_account_ends_its_open_session(make_client) -> None:  # noqa: ANN001
    client = make_client()
    ctx = client.app.state.context
    accounts.add(ctx, "m.rossi", PASSWORD, "support")
    assert _sign_in(client, "m.rossi").status_code == 200

    accounts.disable(ctx, "m.rossi", actor="admin1")

    assert client.get(SESSION).status_code == 401
    assert _sign_in(client, "m.rossi").status_code == 401
    assert [e.actor for e in _events(ctx, "staff.user_disabled")] == ["admin1"]


def test_only_an_admin_may_list_the_accounts(make_client) -> None:  # noqa: ANN001
    client = make_client()
    ctx = client.app.state.context
    accounts.add(ctx, "m.rossi", PASSWORD, "support")
    accounts.add(ctx, "a.bianchi", PASSWORD, "admin")

    assert _sign_in(client, "m.rossi").status_code == 200
    refused = client.get("/api/v1/staff/users")
    assert _sign_in(client, "a.bianchi").status_code == 200
    listed = client.get("/api/v1/staff/users")

    assert refused.status_code == 403 and refused.json()["error"]["code"] == "staff_forbidden"
    assert listed.status_code == 200
    assert [u["username"] for u in listed.json()] == ["a.bianchi", "m.rossi"]
    assert "password_hash" not in listed.text and "$argon2" not in listed.text


def test_the_cli_adds_changes_and_disables_accounts_audited_as_the_system_user(
    tmp_path: Path, make_client, make_settings
) -> None:  # noqa: ANN001
    config = tmp_path / "pacsbridge.toml"
    config.write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACSBRIDGE_")}

    def users(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "pacsbridge", "users", *args, "--config", str(config)]
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env)

    added = users("add", "m.rossi", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    short = users("passwd", "m.rossi", "--password-stdin", stdin="short\n")
    changed = users("passwd", "m.rossi", "--password-stdin", stdin="another long secret\n")

    assert added.returncode == 0, added.stderr
    assert short.returncode == 1 and "Dati in ingresso non validi" in short.stderr
    assert changed.returncode == 0, changed.stderr
    client = make_client()  # the same data folder: the same database
    assert _sign_in(client, "m.rossi", PASSWORD).status_code == 401
    assert _sign_in(client, "m.rossi", "another long secret").status_code == 200
    assert users("disable", "m.rossi").returncode == 0
    assert client.get(SESSION).status_code == 401
    ctx = client.app.state.context
    kinds = ("staff.user_added", "staff.password_changed", "staff.user_disabled")
    actors = {e.actor for kind in kinds for e in _events(ctx, kind)}
    assert len(actors) == 1 and actors.pop().startswith("cli:")
