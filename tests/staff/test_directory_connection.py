"""Directory sign-in and the connection: the directory down, silent or misconfigured is a clear
error and local accounts still work; StartTLS and ldaps check the certificate and the host
name; ``pacsbridge check``; the settings' own checks."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from typing import Any

import pytest
from pydantic import ValidationError

from pacsbridge import checks
from pacsbridge.errors import DirectoryUnavailable
from pacsbridge.settings.operations import DirectorySettings
from pacsbridge.staff import accounts, directory
from peers.dicom import free_port
from peers.slapd import PEOPLE, SERVICE_DN, SERVICE_PASSWORD, Slapd, user_dn
from staff.directory_helpers import (
    PASSWORD,
    ROLES,
    binds_as,
    directory_config,
    events,
    sign_in,
)


def test_directory_down_is_a_clear_audited_error_and_a_local_admin_still_signs_in(
    make_client, slapd: Slapd
) -> None:  # noqa: ANN001
    client = make_client(**directory_config(slapd, url=f"ldap://127.0.0.1:{free_port()}"))
    ctx = client.app.state.context
    accounts.add(ctx, "admin.locale", "local admin password", "admin")

    down = sign_in(client, "someone")
    local = sign_in(client, "admin.locale", "local admin password")

    assert down.status_code == 503, down.text
    error = down.json()["error"]
    assert error["code"] == "directory_unavailable"
    assert error["message"].startswith("Directory non raggiungibile")
    [failed] = events(ctx, "staff.sign_in_failed")
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


def test_pacsbridge_check_binds_the_service_account_and_reports_failures(
    make_settings, slapd: Slapd
) -> None:  # noqa: ANN001
    good = checks.staff_directory(make_settings(**directory_config(slapd)))
    wrong = checks.staff_directory(make_settings(**directory_config(slapd, bind_password="wrong")))
    down = checks.staff_directory(
        make_settings(**directory_config(slapd, url=f"ldap://127.0.0.1:{free_port()}"))
    )

    direct = checks.staff_directory(
        make_settings(
            **directory_config(slapd, bind_dn="", user_bind_template=f"uid={{username}},{PEOPLE}")
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


@pytest.mark.parametrize("host", ["ldap.ospedale.example.it", "10.0.0.7", "[2001:db8::7]"])
def test_ldap_without_start_tls_to_another_host_is_refused_passwords_never_in_clear(
    host: str,
) -> None:
    with pytest.raises(ValidationError, match="needs start_tls"):
        DirectorySettings(**_directory_values(f"ldap://{host}:389"))
    assert DirectorySettings(**_directory_values(f"ldap://{host}:389"), start_tls=True).enabled
    assert DirectorySettings(**_directory_values(f"ldaps://{host}:636")).enabled
    for local in ("ldap://127.0.0.1:389", "ldap://localhost", "ldap://[::1]:389"):
        assert DirectorySettings(**_directory_values(local)).enabled  # the same host


def test_a_user_search_base_the_directory_lacks_is_unavailable_not_a_crash(
    make_client, slapd: Slapd
) -> None:  # noqa: ANN001
    missing = f"ou=nowhere,{PEOPLE}"
    client = make_client(**directory_config(slapd, user_search_base=missing))

    answer = sign_in(client, "someone")
    checked = checks.staff_directory(client.app.state.context.settings)

    assert answer.status_code == 503 and answer.json()["error"]["code"] == "directory_unavailable"
    [failed] = events(client.app.state.context, "staff.sign_in_failed")
    assert failed.details["detail"] == "search: noSuchObject"
    assert checked[1] is False and "noSuchObject" in checked[2]


def test_tls_refuses_a_certificate_for_another_host_name(make_settings, slapd: Slapd) -> None:  # noqa: ANN001
    uid = slapd.add_user("zeno", PASSWORD, ("pacs-admins",))
    port = slapd.ldaps_url.rsplit(":", 1)[1]
    other_name = f"ldaps://localhost:{port}"  # 127.0.0.1 too, but the certificate names only the IP
    config = directory_config(slapd, url=other_name, ca_file=str(slapd.ca_file))
    handshakes = slapd.settled_log().count("TLS established")

    with pytest.raises(DirectoryUnavailable):
        directory.authenticate(make_settings(**config).staff.directory, uid, PASSWORD)

    # the handshake with our CA succeeded: what refused the server is its name
    deadline = time.monotonic() + 10
    while slapd.settled_log().count("TLS established") <= handshakes:
        assert time.monotonic() < deadline, "slapd logged no TLS handshake"
        time.sleep(0.05)
    assert binds_as(slapd, uid) == 0


def test_the_check_command_reports_the_directory_from_a_toml_file(tmp_path, slapd: Slapd) -> None:  # noqa: ANN001
    mapping = "\n".join(f'"{dn}" = "{role}"' for dn, role in ROLES.items())
    config = tmp_path / "pacsbridge.toml"
    config.write_text(
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n[pacs]\nhost = "127.0.0.1"\nport = 1\n'
        f'[staff.directory]\nenabled = true\nurl = "{slapd.url}"\nbind_dn = "{SERVICE_DN}"\n'
        f'bind_password = "{SERVICE_PASSWORD}"\nuser_search_base = "{PEOPLE}"\n'
        f"[staff.directory.groups_to_roles]\n{mapping}\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACSBRIDGE_")}
    argv = [sys.executable, "-m", "pacsbridge", "check", "--config", str(config)]

    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)

    assert f"OK  staff directory: {slapd.url}: service account binds" in done.stdout, done
    assert SERVICE_PASSWORD not in done.stdout + done.stderr


@pytest.mark.parametrize("encryption", ["start_tls", "ldaps"])
def test_tls_checks_the_certificate_against_the_ca_file_and_refuses_an_unknown_ca(
    make_settings, slapd: Slapd, encryption: str
) -> None:  # noqa: ANN001
    uid = slapd.add_user("sara", PASSWORD, ("pacs-admins",))
    url = slapd.ldaps_url if encryption == "ldaps" else slapd.url
    start_tls = encryption == "start_tls"
    trusted = directory_config(slapd, url=url, start_tls=start_tls, ca_file=str(slapd.ca_file))
    unknown_ca = directory_config(slapd, url=url, start_tls=start_tls)  # the system's CAs only

    signed_in = directory.authenticate(make_settings(**trusted).staff.directory, uid, PASSWORD)
    with pytest.raises(DirectoryUnavailable):
        directory.authenticate(make_settings(**unknown_ca).staff.directory, uid, PASSWORD)
    checked = checks.staff_directory(make_settings(**trusted))

    assert signed_in.role == "admin"
    assert checked[1] is True and "in clear" not in checked[2]
    log = slapd.settled_log()
    binds = re.findall(rf'BIND dn="{re.escape(user_dn(uid))}" mech=SIMPLE .*ssf=(\d+)', log)
    assert binds and all(int(ssf) >= 128 for ssf in binds)  # the password crossed encrypted
