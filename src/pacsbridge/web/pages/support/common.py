"""Shared bits of the support pages: dates of the filters, pages of a list, action pages."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from math import ceil
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from pacsbridge.errors import InputError
from pacsbridge.staff.roles import Permission
from pacsbridge.web.pages.session import render
from pacsbridge.web.pages.support.auth import Console

PER_PAGE = 25


def day_start(value: str, field: str, end: bool = False) -> datetime | None:
    """``2026-12-02`` → that day's start in UTC; ``end``: the next day's (the day included)."""
    if not value:
        return None
    try:
        parsed = date.fromisoformat(value.strip())
    except ValueError:
        raise InputError(
            "bad date", fields=[{"field": field, "error": "not a date", "type": "date"}]
        ) from None
    start = datetime.combine(parsed, time(), tzinfo=UTC)
    return start + timedelta(days=1) if end else start


def page_number(value: int) -> int:
    return max(1, min(value, 100_000))


def pager(page: int, total: int, per_page: int = PER_PAGE) -> dict[str, Any]:
    pages = max(1, ceil(total / per_page))
    return {
        "page": page,
        "pages": pages,
        "total": total,
        "has_prev": page > 1,
        "has_next": page < pages,
    }


def url(request: Request, path: str) -> str:
    return f"{request.scope.get('root_path', '')}{path}"


def base_context(page: Console, section: str) -> dict[str, Any]:
    return {
        "staff": page.staff,
        "csrf_token": page.csrf_token,
        "section": section,
        "may": {str(p): page.may(p) for p in Permission},
    }


def confirm_page(
    request: Request,
    page: Console,
    section: str,
    question: str,
    action_url: str,
    back_url: str,
    danger: bool = False,
) -> Response:
    """The confirmation step every action has: a page with one form (CSRF) and a way back."""
    context = {
        **base_context(page, section),
        "question": question,
        "action_url": action_url,
        "back_url": back_url,
        "danger": danger,
    }
    return render(request, "support/confirm.html", context)


def done(request: Request, path: str, notice: str) -> Response:
    """After an action: back to the object's page, with what happened (``?fatto=``)."""
    return RedirectResponse(url(request, f"{path}?fatto={notice}"), status_code=303)
