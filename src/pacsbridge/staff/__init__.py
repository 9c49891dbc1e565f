"""Staff accounts of the support desk and the PACS administrators (docs/staff.md).

Flow: ``roles`` (what ``support`` and ``admin`` may do) → ``accounts`` (local accounts managed
with ``pacsbridge users``, argon2 hashes, lock-out after repeated failures) or
``directory_accounts`` (Active Directory / OpenLDAP through ``directory``: the directory checks
the password, its groups give the role) → ``sessions`` (sign-in gives a cookie session; its
token is stored only as a SHA-256). Every staff action is an audit event whose ``actor`` is
the staff member's user name.
"""
