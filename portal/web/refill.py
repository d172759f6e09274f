"""Forms keep what people typed: a refused form comes back filled, with the message at its field.

One mechanism for every HTML form of the portal. When a browser form POST raises a
``DomainError`` (a field that does not parse, a rule of the conventions that refuses it),
``portal.web.errors`` calls :func:`refilled_page` instead of showing an error page:

1. the page the form was sent from (the ``Referer``, same host only; otherwise the GET view
   of the same URL) is rendered again by a **sub-request** that goes through the whole
   application — input guard, gate (membership, permission), the view — exactly as if the
   person had reloaded it, so nothing can be seen that a plain GET would not show;
2. in that page, the form that was sent (same ``action``, and among several forms with that
   action the one whose hidden fields carry the submitted values) gets back every submitted
   value — text, numbers, dates, selects, radios, checkboxes, textareas; never passwords,
   files or hidden fields, which the page renders fresh (new CSRF token, new idempotency token);
3. the control named by ``DomainError.field`` gets ``aria-invalid="true"``, the message in a
   ``<p class="field-error">`` right after it (after the legend for a radio or checkbox group)
   linked by ``aria-describedby``; an error naming no field of the form is shown at the top of
   the form. The ``#messages`` region says that the form was refused and links to the field;
4. the answer carries the error's status (422 for a value that cannot be read, 409 for a rule
   that refuses it…). For an htmx request the refilled ``<form>`` alone is sent back and
   swapped in place (``HX-Retarget`` the form's id, ``outerHTML``).

Nothing is written: the transaction was rolled back before. When the page no longer holds
the form (the state changed), it is shown as it is now with the message on top. When the
page cannot be found
(no Referer and no GET at that URL, a download, another host), the caller falls back to the
French error page. Form views therefore need no code of their own; see docs/ARCHITECTURE.md
("Forms").
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import current_app, g, request
from lxml import html as lxml_html
from markupsafe import escape
from werkzeug.datastructures import MultiDict

from portal.domain.errors import DomainError

# Statuses for which the page is refilled: a value or a state refused the form, or too many
# attempts (429: the form comes back filled, the message on top, with its Retry-After). A 403
# (no permission) keeps its own page.
REFILL_STATUSES = {400, 404, 409, 410, 422, 429}
_NOT_REFILLED_TYPES = {"hidden", "password", "file", "submit", "button", "reset", "image"}
_NOT_FORWARDED = {"HTTP_HOST", "HTTP_HX_REQUEST", "HTTP_HX_TARGET", "HTTP_HX_TRIGGER",
                  "HTTP_HX_TRIGGER_NAME", "HTTP_HX_CURRENT_URL", "HTTP_CONTENT_TYPE",
                  "HTTP_CONTENT_LENGTH", "HTTP_X_CSRFTOKEN"}
# What an HTML/XML tree cannot hold (NUL, control characters, lone surrogates): dropped from
# the values put back (the input guard refuses NUL anyway; the field parser names the rest).
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_FORM_RE = re.compile(r"<form\b[^>]*>.*?</form>", re.S | re.I)


def wants_refill(error: DomainError) -> bool:
    return (request.method == "POST" and not request.path.startswith("/api/")
            and error.status in REFILL_STATUSES
            and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data")
            and not g.get("_refill_running"))


def _page_path() -> str | None:
    """The page the form was sent from: the ``Referer`` (same host only); without one, the
    form's own URL when it has a GET view, else the nearest page above it
    (``/membres/3/role`` → ``/membres``)."""
    referer = request.headers.get("Referer", "")
    if referer:
        parts = urlsplit(referer)
        if parts.netloc == request.host and parts.path.startswith("/") \
                and not parts.path.startswith(("//", "/api/")) and "\\" not in parts.path:
            return parts.path + (f"?{parts.query}" if parts.query else "")
        return None
    adapter = current_app.url_map.bind_to_environ(request.environ)
    path, query = request.path, request.query_string.decode("latin-1")
    while path.strip("/"):
        try:
            adapter.match(path, method="GET")
        except Exception:  # no GET view there (404, 405, a redirect): one level up
            path, query = path.rstrip("/").rsplit("/", 1)[0], ""
            continue
        return path + (f"?{query}" if query else "")
    return None


def _render_page(path: str):
    """GET ``path`` through the whole application, as the same signed-in person."""
    environ = {key: value for key, value in request.environ.items()
               if key.startswith("HTTP_") and key not in _NOT_FORWARDED}
    path_only, _, query = path.partition("?")
    headers = {key[5:].replace("_", "-").title(): value for key, value in environ.items()}
    g._refill_running = True
    try:
        with current_app.test_request_context(
                path_only, method="GET", query_string=query, headers=headers,
                base_url=request.host_url, environ_base={
                    "REMOTE_ADDR": request.remote_addr or "127.0.0.1"}):
            response = current_app.full_dispatch_request()
    finally:
        g._refill_running = False
    return response


def _submitted_form(root, submitted: MultiDict):
    """The form that was sent: same action, then hidden values matching the submission."""
    candidates = []
    for form in root.iter("form"):
        action = urlsplit(form.get("action") or request.path).path
        if action == request.path and (form.get("method") or "get").lower() == "post":
            candidates.append(form)
    def hidden_match(form):
        for field in form.iter("input"):
            name = field.get("name")
            if (field.get("type") or "").lower() == "hidden" and name \
                    and name not in ("csrf_token", "request_token") \
                    and field.get("value", "") not in submitted.getlist(name):
                return False
        return True
    matching = [f for f in candidates if hidden_match(f)]
    return (matching or candidates or [None])[0]


def _fill(form, submitted: MultiDict) -> None:
    for field in form.iter("input", "select", "textarea"):
        name = field.get("name")
        if not name or field.get("disabled") is not None:
            continue
        values = submitted.getlist(name)
        if field.tag == "textarea":
            if name in submitted:
                field.text = values[0]
            continue
        if field.tag == "select":
            if name not in submitted:
                continue
            for option in field.iter("option"):
                value = option.get("value", option.text_content())
                if value in values:
                    option.set("selected", "selected")
                else:
                    option.attrib.pop("selected", None)
            continue
        kind = (field.get("type") or "text").lower()
        if kind in _NOT_REFILLED_TYPES:
            continue
        if kind in ("checkbox", "radio"):
            if field.get("value", "on") in values:
                field.set("checked", "checked")
            else:
                field.attrib.pop("checked", None)
        elif name in submitted:
            field.set("value", values[0])


def _controls(element) -> list:
    return [c for c in element.iter("input", "select", "textarea")
            if (c.get("type") or "").lower() != "hidden"]


def _mark_error(root, form, error: DomainError) -> str | None:
    """Put the message at its field; return the id of the field (for the summary's link).

    The field is the control named ``error.field``; for a rule about several controls (the
    roles of a structure: two checkboxes), the element of the form that declares
    ``data-field="<field>"`` (a ``<fieldset>``). The message's id is ``<control id>-error``
    (``<field>-error`` for a group), ``erreur-formulaire`` when no field is named."""
    message = _UNSAFE.sub("", error.message)
    field = error.field or ""
    controls = [c for c in _controls(form) if field and c.get("name") == field]
    group = None
    if not controls and field:
        group = next(iter(form.xpath(".//*[@data-field=$name]", name=field)), None)
        controls = _controls(group) if group is not None else []
    first = controls[0] if controls else None
    if group is None and first is not None \
            and (len(controls) > 1 or (first.get("type") or "") in ("radio", "checkbox")):
        group = next((a for a in first.iterancestors() if a.tag == "fieldset"), None)
    if first is None:
        error_id = f"{field}-error" if field else "erreur-formulaire"
    elif group is not None:
        error_id = f"{field}-error"
    else:
        error_id = f"{first.get('id') or field}-error"
    note = lxml_html.fragment_fromstring(
        f'<p class="field-error" id="{escape(error_id)}">{escape(message)}</p>')
    if first is None:
        note.set("role", "alert")
        form.insert(0, note)
        return None
    for control in controls:
        control.set("aria-invalid", "true")
        described = control.get("aria-describedby")
        control.set("aria-describedby", f"{described} {error_id}" if described else error_id)
    if group is not None:
        group.set("class", ((group.get("class") or "") + " has-error").strip())
        legend = next(group.iter("legend"), None)
        if legend is not None:
            legend.addnext(note)
        else:
            group.insert(0, note)
    else:
        anchor = first
        # A checkbox inside its <label>: the message goes after the label.
        parent = first.getparent()
        if parent is not None and parent.tag == "label":
            anchor = parent
        note.tail, anchor.tail = anchor.tail, None
        anchor.addnext(note)
        anchor_class = (first.get("class") or "")
        first.set("class", (anchor_class + " has-error").strip())
    if not first.get("id"):
        first.set("id", f"champ-{field}")
    return first.get("id")


_MESSAGES = '<div id="messages" role="status" aria-live="polite">'


def _summary(error: DomainError, field_id: str | None) -> str:
    link = f' <a href="#{escape(field_id)}">Corriger le champ</a>' if field_id else ""
    return (f'<p class="alert alert-error" role="alert">Le formulaire n\'a pas été '
            f'enregistré : {escape(_UNSAFE.sub("", error.message))}{link}</p>')


def refilled_page(error: DomainError):
    """The page of the refused form, refilled; ``None`` when it cannot be built."""
    path = _page_path()
    if path is None:
        return None
    submitted = MultiDict([(key, _UNSAFE.sub("", value))
                           for key, value in request.form.items(multi=True)])
    response = _render_page(path)
    if response.status_code != 200 or response.mimetype != "text/html":
        return None
    page = response.get_data(as_text=True)
    # Only the forms are parsed and written back: the rest of the page is sent as rendered.
    spans = [(m.start(), m.end()) for m in _FORM_RE.finditer(page)]
    form = None
    if spans:
        wrapper = lxml_html.fragment_fromstring(
            "".join(f'<div data-refill="{i}">{page[a:b]}</div>'
                    for i, (a, b) in enumerate(spans)), create_parent="div")
        form = _submitted_form(wrapper, submitted)
    if form is None:
        # The page no longer offers that form (the state changed since it was shown): the
        # page as it is now, the message on top.
        if request.headers.get("HX-Request") == "true" or _MESSAGES not in page:
            return None
        response.set_data(page.replace(_MESSAGES, _MESSAGES + _summary(error, None), 1))
        response.status_code = error.status
        return response
    _fill(form, submitted)
    field_id = _mark_error(wrapper, form, error)
    # A form folded in a <details> comes back unfolded, its error in sight.
    for folded in form.iterdescendants("details"):
        if any(True for _ in folded.iterdescendants() if _.get("aria-invalid") == "true"):
            folded.set("open", "open")
    if not form.get("id"):
        form.set("id", f"formulaire-{int(form.getparent().get('data-refill')) + 1}")
    index = int(form.getparent().get("data-refill"))
    start, end = spans[index]
    form_html = lxml_html.tostring(form, encoding="unicode", method="html")
    summary = _summary(error, field_id)
    if request.headers.get("HX-Request") == "true":
        # Swapped in place, the message must be announced: it becomes an alert.
        if 'role="alert"' not in form_html:
            form_html = form_html.replace('class="field-error"',
                                          'class="field-error" role="alert"', 1)
        response.set_data(form_html)
        response.headers["HX-Retarget"] = f"#{form.get('id')}"
        response.headers["HX-Reswap"] = "outerHTML"
    else:
        before = page[:start]
        opening = before.rfind("<details")
        if opening != -1 and "</details>" not in before[opening:]:
            before = before[:opening] + "<details open" + before[opening + len("<details"):]
        page = before + form_html + page[end:]
        page = page.replace(_MESSAGES, _MESSAGES + summary, 1)
        response.set_data(page)
    response.status_code = error.status
    return response
