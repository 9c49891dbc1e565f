"""Shared bits of the support pages: dates of the filters, pages of a list, action pages."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from math import ceil
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from pacsbridge.context import Context
from pacsbridge.errors import InputError, NotFoundError
from pacsbridge.staff.roles import Permission
from pacsbridge.web.deps import Ctx
from pacsbridge.web.pages.i18n import gettext
from pacsbridge.web.pages.session import render
from pacsbridge.web.pages.support.auth import Console, SupportConsole, form, needs

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


def days(dal: str, al: str) -> tuple[datetime | None, datetime | None]:
    """The ``dal``..``al`` filter of a page: the first day's start, the day after the last."""
    return day_start(dal, "dal"), day_start(al, "al", end=True)


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


@dataclass(frozen=True)
class Action:
    """One action of a console page (docs/support.md): the permission it needs, the question
    of its confirmation step, what the page says once it is done."""

    permission: Permission
    question: str
    notice: str
    danger: bool = False


def allowed(page: Console, actions: Mapping[str, Action], name: str) -> Action:
    """The action ``name`` of a page (404 if it has none), if the role may do it (403)."""
    if name not in actions:
        raise NotFoundError(f"no action {name}")
    needs(page, actions[name].permission)
    return actions[name]


async def allowed_form(
    request: Request, page: Console, actions: Mapping[str, Action], name: str
) -> Action:
    """What a POST of an action checks: the action, the role, then the form's CSRF token."""
    chosen = allowed(page, actions, name)
    await form(request)
    return chosen


def notice(actions: Mapping[str, Action], done_name: str, lang: str) -> str:
    """What the page says after ``?fatto=done_name``; nothing for a name it does not know."""
    return gettext(lang, actions[done_name].notice) if done_name in actions else ""


def confirm_page(
    request: Request,
    page: Console,
    section: str,
    chosen: Action,
    fields: Mapping[str, Any],
    action_path: str,
    back_path: str,
) -> Response:
    """The confirmation step every action has: a page with one form (CSRF) and a way back."""
    context = {
        **base_context(page, section),
        "question": gettext(page.lang, chosen.question) % fields,
        "action_url": url(request, action_path),
        "back_url": url(request, back_path),
        "danger": chosen.danger,
    }
    return render(request, "support/confirm.html", context)


def add_confirm_route(
    router: APIRouter,
    base: str,
    section: str,
    actions: Mapping[str, Action],
    exists: Callable[[Context, int], object],
    name: str,
) -> None:
    """``GET base/{id}/{action}``: the confirmation step of an action on one import or
    retrieval; the action and the role are checked first, then ``exists`` (404) answers
    before anything is asked. Asking changes nothing (the POST does)."""

    @router.get(base + "/{object_id}/{action}", name=name)
    def confirm_action(
        object_id: int, action: str, request: Request, ctx: Ctx, page: SupportConsole
    ) -> Response:
        chosen = allowed(page, actions, action)
        exists(ctx, object_id)
        here = f"{base}/{object_id}"
        fields = {"id": object_id}
        return confirm_page(request, page, section, chosen, fields, f"{here}/{action}", here)


def done(request: Request, path: str, notice: str) -> Response:
    """After an action: back to the object's page, with what happened (``?fatto=``)."""
    return RedirectResponse(url(request, f"{path}?fatto={notice}"), status_code=303)
