"""Accessibility of every role's main pages (issue 8): axe-core finds no
serious or critical violation, the page is in French and every form control
has an accessible name; the scan page works with the keyboard alone.

Pages are discovered, not listed: for each role the test signs in once (one
browser context per role), reads the links of the layout's navigation menus
(tenant menu and account menu), visits them, and follows the links of their
``<main>`` that stay inside the same space (detail pages, forms, lists, reports)
up to ``DEPTH`` links from the menu — at most ``PER_SHAPE`` pages per URL
shape (``/conventions/12`` and ``/conventions/13`` are the same template),
downloads excluded. A page added to a menu is checked without touching this file.
Closed ``<details>`` are opened before axe runs, since axe skips hidden content.
"""
from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import pytest

from tests.browser.conftest import ARTIFACTS, MOBILE, PageWatch

DESKTOP = {"width": 1280, "height": 900}
PASSWORD = "demo-pass-numerique"

# (login before the @, what the role is) — the demo accounts of the README.
ROLES = [
    ("mgp.admin", "Métropole, administrateur (2FA)"),
    ("mgp.agent", "Métropole, agent"),
    ("aptic.admin", "#APTIC, administrateur (2FA)"),
    ("aptic.agent", "#APTIC, agent"),
    ("hub.admin", "Hub, administrateur (2FA)"),
    ("hub.agent", "Hub, agent"),
    ("referent.neuilly-plaisance", "commune, référent (also a prescripteur: switcher)"),
    ("agent.neuilly-plaisance", "commune, agent communal"),
    ("prescripteur.neuilly-plaisance-ccas", "structure, prescripteur"),
    ("operateur.bondy-centre-social", "structure, agent opérateur"),
    ("admin.bondy-mediatheque", "structure, administrateur du lieu"),
]

# Links that download a file or leave the HTML world.
DOWNLOAD = re.compile(r"\.(csv|xlsx|pdf|json|svg|png|zip)$", re.I)     # on the URL's path
MAX_PAGES_PER_ROLE = 40
DEPTH = 3                        # menu page = 1
PER_SHAPE = 2                    # e.g. the dashboards of two programmes, not of all
ACCOUNT = "/mon-compte"          # the account menu's pages, shared by every space

LABELS_JS = """() => {
  const out = [];
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (['hidden', 'submit', 'button', 'reset', 'image'].includes(el.type)
        || el.closest('[hidden]')) continue;   // buttons are named by their value
    const named = el.labels && el.labels.length
      || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
      || el.getAttribute('title');
    if (!named) out.push(el.outerHTML.slice(0, 120));
  }
  return out;
}"""


class RoleWatch(PageWatch):
    """PageWatch on a chosen viewport (PageWatch itself is phone-sized)."""

    def __init__(self, browser, base_url, viewport):
        self.context = browser.new_context(viewport=viewport, locale="fr-FR")
        self.page = self.context.new_page()
        self.base_url = base_url
        self.console: list[str] = []
        self.page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        self.page.on("pageerror", lambda exc: self.console.append(f"pageerror: {exc}"))

    def sign_in(self, app, local: str) -> list[str]:
        """Password, then — for the administrators of MGP, #APTIC and the
        Hub — the TOTP code an authenticator app would show. Returns the
        problems of the second-factor page, checked on the way."""
        self.login(local, PASSWORD)
        if "/connexion/" not in self.page.url:
            return []
        problems = check_page(self, f"{local} {urlsplit(self.page.url).path}")
        from helpers import next_totp_code
        self.page.fill("#code", next_totp_code(app, f"{local}@demo.pass-numerique.fr"))
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state()
        assert "/connexion/" not in self.page.url, f"{local}: second factor refused"
        return problems

    def settle(self):
        """Wait for the panels htmx loads after the page (hx-trigger=load)."""
        # Polled from here: wait_for_function's polling evaluates a string in
        # the page, which the CSP (no unsafe-eval) reports as a violation.
        for _ in range(50):
            if not self.page.evaluate(
                    "() => !!document.querySelector('.lazy-panel, .htmx-request')"):
                return
            self.page.wait_for_timeout(100)

    def links(self, selector: str) -> list[str]:
        return self.page.eval_on_selector_all(
            selector, "els => els.filter(a => !a.hasAttribute('download'))"
                      ".map(a => a.getAttribute('href'))")


BUTTONS_JS = """() => Array.from(document.querySelectorAll('button, .button'))
  .filter(b => !b.classList.contains('button')
          || (b.offsetParent !== null && b.getBoundingClientRect().height < 44))
  .map(b => b.outerHTML.slice(0, 120))"""


def _shape(path: str) -> str:
    """The template behind a path: numbers and codes in the path collapse."""
    return re.sub(r"/(\d+|[A-Z0-9]+-[A-Z0-9-]+|MGP\d*)(?=/|$)", "/#", path)


def _serious(violations) -> list[str]:
    return [f"{v['id']} ({v['impact']}): {v['help']} — "
            + ", ".join(" ".join(n["target"]) for n in v["nodes"][:5])
            for v in violations if v["impact"] in ("serious", "critical")]


def check_page(watch: RoleWatch, label: str) -> list[str]:
    """Problems of the page now shown: axe serious/critical, lang, labels.
    Closed <details> are opened first: axe skips hidden content."""
    page = watch.page
    page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
    problems = [f"{label}: axe {line}" for line in _serious(watch.run_axe())]
    if page.get_attribute("html", "lang") != "fr":
        problems.append(f"{label}: <html lang> is {page.get_attribute('html', 'lang')!r}")
    problems += [f"{label}: form control without a label: {html}"
                 for html in page.evaluate(LABELS_JS)]
    # Issue 15: one component set — no bare browser button, every button 44 px high at least.
    problems += [f"{label}: <button> without the .button component class: {html}"
                 for html in page.evaluate(BUTTONS_JS)]
    return problems


def visit(watch: RoleWatch, url: str, role: str, pages: list, problems: list,
          on_page=None) -> bool:
    """Open url, let its panels load, check it — or hand it to ``on_page(watch, label)``,
    which returns its own problems (the form sweep lists the forms instead); False when it
    is no HTML page."""
    parts = urlsplit(url)
    before = len(watch.console)
    response = watch.page.goto(url)
    if response is None or "text/html" not in (response.headers.get("content-type") or ""):
        return False
    assert response.status < 400, f"{role}: {parts.path} answered {response.status}"
    watch.settle()
    label = f"{role} {parts.path}{'?' + parts.query if parts.query else ''}"
    pages.append(label)
    if on_page is not None:
        problems += on_page(watch, label)
        return True
    problems += check_page(watch, label)
    problems += [f"{label}: CSP violation: {m}" for m in watch.console[before:]
                 if re.search(r"Content.Security.Policy", m, re.I)]
    # Reflow (WCAG 1.4.10): on a 360 px screen the page does not scroll sideways
    # (wide tables scroll inside their own box). Desktop pages are narrowed in place.
    viewport = watch.page.viewport_size
    if viewport != MOBILE:
        watch.page.set_viewport_size(MOBILE)
    scroll = watch.page.evaluate("document.documentElement.scrollWidth")
    if scroll > MOBILE["width"] + 1:
        problems.append(f"{label}: the page is {scroll} px wide on a {MOBILE['width']} px screen")
    if viewport != MOBILE:
        watch.page.set_viewport_size(viewport)
    return True


def crawl(watch: RoleWatch, role: str, on_page=None,
          per_shape: int = PER_SHAPE) -> tuple[list[str], list[str]]:
    """From the page shown after sign-in, visit every space of the user (the
    « Mes espaces » chooser when there are several), the links of each
    space's menus and, inside the space, the pages they link to (up to DEPTH
    links from the menu). Return (pages, problems)."""
    page = watch.page
    pages: list[str] = []
    problems: list[str] = []
    seen: dict[str, set[str]] = {}          # URL shape → paths visited
    homes = [page.url]
    if page.locator("nav.tenant-nav").count() == 0:     # several spaces: the chooser
        seen[_shape(urlsplit(page.url).path)] = {urlsplit(page.url).path}
        visit(watch, page.url, role, pages, problems, on_page)
        homes = [urljoin(page.url, h) for h in watch.links("main .card a[href]")]
        assert homes, f"{role}: no space to enter from {page.url}"
    for home in homes:
        page.goto(home)
        path = urlsplit(page.url).path
        assert page.locator("nav.tenant-nav").count() == 1, f"{role}: no tenant menu at {path}"
        space = "/".join(path.rstrip("/").split("/")[:3]) + "/"       # /commune/<slug>/
        queue = [(urljoin(page.url, h), 1)
                 for h in watch.links("nav.tenant-nav a[href], nav.user-menu a[href]")]
        while queue and len(pages) < MAX_PAGES_PER_ROLE:
            url, level = queue.pop(0)
            parts = urlsplit(url)
            if parts.netloc != urlsplit(watch.base_url).netloc or DOWNLOAD.search(parts.path):
                continue
            if level == 1 and not parts.path.startswith((space, ACCOUNT)):
                continue                     # the switcher's other spaces: their own turn
            same_shape = seen.setdefault(_shape(parts.path), set())
            if parts.path in same_shape or len(same_shape) >= per_shape:
                continue
            same_shape.add(parts.path)
            if not visit(watch, url, role, pages, problems, on_page):
                continue
            if level < DEPTH:
                for href in watch.links("main a[href]"):
                    below = urljoin(page.url, href.split("#")[0])
                    if urlsplit(below).path.startswith((space, ACCOUNT)):
                        queue.append((below, level + 1))
    return pages, problems


@pytest.fixture
def role_watch(request, chromium, live_server):
    watches = []

    def make(viewport=DESKTOP):
        watch = RoleWatch(chromium, live_server, viewport)
        watches.append(watch)
        return watch
    yield make
    failed = getattr(request.node, "rep_call", None)
    for n, watch in enumerate(watches):
        if failed is not None and failed.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            watch.page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{n}.png"),
                                  full_page=True)
        watch.context.close()


def _lived_in(app) -> None:
    """What the demo data lacks for some pages to exist: scans (recent scans
    with their undo form), a closed month (a contre-paiement statement) and
    a stored monthly report — made through the domain functions."""
    import datetime as dt

    from portal.domain import clock, operateurs, reports, scanning, settlement
    from portal.domain.ledger import Actor
    from portal.extensions import db
    from portal.models import Pass
    from tests.scan_helpers import hand_out, programme_of, qr, structure
    with app.app_context():
        session = db.session
        ids = hand_out(session, carnets=[921])
        scanner = scanning.Scanner(structure(session), None)
        service_id = operateurs.active_services(session, scanner.structure.id)[0].id
        for pass_id in ids[:3]:
            outcome = scanning.consume_once(
                session, scanning.ScanInput(code=qr(session.get(Pass, pass_id)),
                                            service_id=service_id),
                scanner, f"a11y-{pass_id}")
            assert outcome.status == 201, outcome.body
        session.commit()
        period = clock.today().strftime("%Y-%m")
        later = settlement.period_end(period) + dt.timedelta(hours=1)
        assert settlement.close_month(session, period, now=later)
        reports.generate(session, programme_of(session), reports.previous_month(clock.today()),
                         actor=Actor(None, None))
        session.commit()
        session.remove()


@pytest.mark.parametrize("role", [r for r, _ in ROLES])
def test_main_pages_of_each_role_pass_axe(app, role_watch, role):
    _lived_in(app)
    watch = role_watch(DESKTOP)
    signing_in = watch.sign_in(app, role)
    pages, problems = crawl(watch, role)
    problems = signing_in + problems
    # Shown with -s or on failure: what the crawl reached.
    print(f"\n{role}: {len(pages)} pages: " + ", ".join(p.split(" ", 1)[1] for p in pages))
    assert len(pages) >= 2, f"{role}: the menu led to no page ({pages})"
    assert not problems, f"{len(problems)} accessibility problem(s):\n" + "\n".join(problems)
    assert watch.csp_violations() == []


@pytest.mark.parametrize("role", ["prescripteur.neuilly-plaisance-ccas",
                                  "operateur.bondy-centre-social"])
def test_field_roles_pages_on_a_phone(app, role_watch, role):
    """The roles that work on a phone (desk, scan): their pages at 360×740,
    axe and no horizontal scrolling of the page."""
    _lived_in(app)
    watch = role_watch(MOBILE)
    watch.sign_in(app, role)
    pages, problems = crawl(watch, f"{role} (360×740)")
    print(f"\n{role} (360×740): {len(pages)} pages")
    assert len(pages) >= 3, pages
    assert not problems, f"{len(problems)} accessibility problem(s):\n" + "\n".join(problems)


def _distributed_pass(app) -> tuple[int, str, str, str]:
    """A pass handed out by the Bondy CCAS (domain functions, as the scanning
    tests do): (id, serial, verification code, QR payload path)."""
    from portal.extensions import db
    from portal.models import Pass
    from tests.scan_helpers import hand_out, qr, verification_code
    with app.app_context():
        pass_id = hand_out(db.session)[0]
        found = db.session.get(Pass, pass_id)
        result = (pass_id, found.serial, verification_code(found), urlsplit(qr(found)).path)
        db.session.remove()
    return result


def test_public_pages_pass_axe(app, role_watch):
    """What a visitor reaches without an account: the sign-in page and the
    pages it links to, the pass check, a pass's QR page; on a phone."""
    _id, _serial, _code, qr_path = _distributed_pass(app)
    watch = role_watch(MOBILE)
    pages, problems = [], []
    visit(watch, f"{watch.base_url}/connexion", "public", pages, problems)
    for href in watch.links("main a[href]"):
        visit(watch, urljoin(watch.page.url, href), "public", pages, problems)
    for path in ("/verifier", qr_path):
        visit(watch, watch.base_url + path, "public", pages, problems)
    assert len(pages) >= 4, pages
    assert not problems, "\n".join(problems)


def test_scan_pages_on_a_phone_pass_axe(app, role_watch):
    """The opérateur's phone (360×740): the scan page, with the manual entry
    and photo sections open, and the page the phone's camera app opens from a
    pass's QR code (« Valider ce pass »)."""
    _id, _serial, _code, qr_path = _distributed_pass(app)
    watch = role_watch(MOBILE)
    watch.sign_in(app, "operateur.bondy-centre-social")
    pages, problems = [], []
    visit(watch, f"{watch.base_url}/structure/bondy-centre-social/scan",
          "operateur (360×740)", pages, problems)
    assert watch.page.evaluate("document.documentElement.scrollWidth") <= MOBILE["width"] + 1
    visit(watch, watch.base_url + qr_path, "operateur (360×740)", pages, problems)
    assert "Valider ce pass" in watch.page.inner_text("main")
    assert not problems, "\n".join(problems)


FOCUS_JS = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return {id: el.id, tag: el.tagName.toLowerCase(),
          text: (el.textContent || '').trim().slice(0, 40),
          focusVisible: el.matches(':focus-visible'),
          outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
          shadow: style.boxShadow !== 'none'};
}"""

FOCUS_RULE_JS = """() => Array.from(document.styleSheets).some(sheet => {
  try {
    return Array.from(sheet.cssRules)
      .some(r => (r.selectorText || '').includes(':focus-visible'));
  }
  catch (e) { return false; }
})"""


def _tab_until(page, predicate, what: str, limit: int = 25) -> list[dict]:
    """Press Tab until the focused element satisfies predicate; every stop
    must show a visible focus indicator."""
    stops = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS_JS)
        stops.append(focus)
        assert focus["focusVisible"] and (focus["outline"] or focus["shadow"]), \
            f"focus not visible on {focus} (tab stops so far: {stops})"
        if predicate(focus):
            return stops
    raise AssertionError(f"{what} not reached with Tab; stops: {stops}")


def test_scan_page_works_with_the_keyboard_alone(app, role_watch):
    """Tab to the manual entry, open it with Enter, type the pass number and
    verification code, Tab to « Valider », Enter: « Pass validé » is shown in
    a live region and the pass is scanned; typed again and sent with Enter,
    it is refused in an alert. No mouse."""
    from portal.extensions import db
    from portal.models import Pass, PassState
    pass_id, serial, code, _qr = _distributed_pass(app)

    watch = role_watch(MOBILE)
    watch.sign_in(app, "operateur.bondy-centre-social")
    page = watch.page
    watch.goto("/structure/bondy-centre-social/scan")
    assert page.evaluate(FOCUS_RULE_JS), "no :focus-visible rule in the page's style sheets"

    _tab_until(page, lambda f: f["tag"] == "summary" and "Saisie manuelle" in f["text"],
               "the manual entry (summary)")
    page.keyboard.press("Enter")
    assert page.evaluate("document.querySelector('.scan-manual').open"), \
        "Enter on the summary did not open the manual entry"
    _tab_until(page, lambda f: f["id"] == "scan-serial", "the pass number field", limit=1)
    page.keyboard.type(serial)
    _tab_until(page, lambda f: f["id"] == "scan-vcode", "the verification code field", limit=1)
    page.keyboard.type(code)
    _tab_until(page, lambda f: f["id"] == "btn-consume", "the « Valider » button", limit=10)
    page.keyboard.press("Enter")

    result = page.locator("#scan-result")
    result.get_by_text("Pass validé").wait_for(timeout=10000)
    assert serial in result.inner_text()
    announced = page.evaluate("""() => {
      const box = document.querySelector('#scan-result');
      const live = el => el && (['status', 'alert'].includes(el.getAttribute('role'))
                                || el.hasAttribute('aria-live'));
      return live(box) || Array.from(box.querySelectorAll('*')).some(live);
    }""")
    assert announced, "the result is not in a live region (role=status/alert or aria-live)"
    # Ready for the next pass: focus back in the code field, manual fields emptied.
    focus = page.evaluate(FOCUS_JS)
    assert focus["id"] == "scan-code", focus
    assert page.input_value("#scan-serial") == "" and page.input_value("#scan-vcode") == ""
    with app.app_context():
        assert db.session.get(Pass, pass_id).state == PassState.SCANNE
        db.session.remove()
    problems = check_page(watch, "scan page after « Pass validé »")

    # The same pass again, sent with Enter from the verification code: the
    # refusal is an alert, and its red box passes axe too.
    _tab_until(page, lambda f: f["id"] == "scan-serial", "the pass number field", limit=3)
    page.keyboard.type(serial)
    page.keyboard.press("Enter")                 # on to the verification code
    assert page.evaluate(FOCUS_JS)["id"] == "scan-vcode"
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    result.get_by_text("Pass déjà utilisé", exact=True).wait_for(timeout=10000)
    assert result.locator("[role=alert]").count() == 1
    problems += check_page(watch, "scan page after « Pass déjà utilisé »")
    assert not problems, "\n".join(problems)
    assert watch.csp_violations() == []
