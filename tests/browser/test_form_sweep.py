"""Every POST form a demo role can reach keeps what was typed when a value is refused
(issue 15, « Must show »), at 360×740 and at 1280 px, in chromium.

For each role (one browser context per role, signed in once) the pages are discovered by the
crawl of the axe test (``tests/browser/test_accessibility.py``: menus, then the links of
``<main>`` inside the space), without running axe on each. On every page each POST form,
plain or htmx, is listed. A form with something to type or choose is swept once per shape of
its action and set of fields (the role form of each member row is one form), on a phone
and on a desktop screen:

1. every text, number, date, e-mail, select, radio and checkbox gets a distinctive,
   plausible value;
2. one field is made invalid, the first that applies: a huge integer in a number field, a
   required field emptied, an e-mail address without @, a choice the select does not offer,
   a date far in the future, a text longer than any field allows, no file chosen;
3. the browser's own checks are switched off (``form.noValidate = true``): the server is
   what is tested; the form is sent with its first submit button;
4. the answer is a 4xx showing the same form again (no error page): a field of that form is
   ``aria-invalid`` and described (``aria-describedby``) by a French message, and every
   field holds the value it was given (passwords and files excepted: never sent back).

axe runs on each role's first error state and on every htmx form's error state (the fragment
swapped in place). Forms with nothing to type (one button, logout…) and forms whose answer is
not a form error (the scan's verdict) are listed in ``NOT_SWEPT`` with the reason; a POST
form that is neither swept nor listed fails the test. The whole sweep's runtime is printed
(``-s``) and quoted in the README.
"""
from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import MOBILE
from tests.browser.test_accessibility import (  # noqa: F401 (role_watch: a fixture)
    DESKTOP, ROLES, RoleWatch, _lived_in, _shape, check_page, crawl, role_watch)

VIEWPORTS = (("360×740", MOBILE), ("1280 px", DESKTOP))

# Forms that are not swept, by the shape of their action (numbers and codes become #): why.
NOT_SWEPT = {
    r"/deconnexion$": "sign-out: one button, nothing typed",
    r"/membres/#/retirer$": "removal of a member: one button",
    r"/operateurs/#/approbation$": "the commune approves a qualified place: one button",
    r"/tranches/#/confirmer$": "the Métropole confirms an amorçage: one button",
    r"/fin-de-validite/#/(prendre-acte|proposer-blocage|etat-contradictoire)$":
        "end of validity steps (acknowledge, propose the blocking, closing statement): "
        "one button each",
    r"/contre-paiement/#/valider$": "#APTIC validates a statement: one button",
    r"/mandats/#/reddition/cloture$": "the reddition is closed: one button",
    r"/programmes/#/export\.(csv|json)$": "a programme's export is queued as a job: one button",
    r"/impressions$": "a print job of one order's carnets: one button (the order is a hidden "
                      "field)",
    r"/operateur/(services/#/retirer|jetons/#/revoquer)$": "removal of a service, revocation "
                                                             "of a scanner token: one button",
    r"/scan/photo$": "photo of a QR code: its answer is the scan's verdict in #scan-result "
                     "(« aucun QR code lisible »), like the scan form",
    r"/scan/valider$": "the scan form: its answer is the scan's verdict in #scan-result (pass "
                       "refused, unknown code), not a form error — tests/test_scanning.py and "
                       "test_accessibility's keyboard test; its « Tester » button posts to "
                       "/scan/tester",
}

# A message is French when it reads like French (and not like an English default).
FRENCH = re.compile(r"[àâçéèêëîïôûùüœ«»]|\b(le|la|les|de|du|des|un|une|est|doit|pas|au|aux|"
                    r"pour|non|valeur|champ|saisi\w*|choisi\w*|indiquez)\b", re.I)
ENGLISH = re.compile(r"\b(the|must|field|required|invalid value|not found)\b", re.I)

COMMON_JS = r"""
const SKIP = ['hidden', 'submit', 'button', 'reset', 'image'];
const actionOf = f => new URL(f.getAttribute('hx-post') || f.getAttribute('action')
                              || location.href, location.href).pathname;
const editable = f => Array.from(f.elements).filter(e => e.name && !e.disabled
  && ['INPUT', 'SELECT', 'TEXTAREA'].includes(e.tagName) && !SKIP.includes(e.type)
  && !e.closest('[hidden], [aria-hidden=true]'));
const kindOf = e => e.tagName === 'SELECT' ? 'select' : e.tagName === 'TEXTAREA' ? 'textarea' : e.type;
const signature = f => Array.from(new Set(editable(f).map(e => kindOf(e) + ':' + e.name)))
  .sort().join(',');
const isPost = f => f.hasAttribute('hx-post')
  || (f.getAttribute('method') || 'get').toLowerCase() === 'post';
const find = (action, sig) => Array.from(document.forms)
  .find(f => isPost(f) && actionOf(f) === action && signature(f) === sig);
const TEXTUAL = ['text', 'email', 'tel', 'url', 'search', 'textarea', 'date', 'password'];
// How one field is made invalid: the first rule that finds a field applies.
const BREAKERS = [
  [e => e.type === 'number', e => { e.value = '999999999999'; }, 'nombre démesuré'],
  [e => e.required && TEXTUAL.includes(kindOf(e)), e => { e.value = ''; }, 'champ obligatoire vidé'],
  [e => e.type === 'email', e => { e.value = 'adresse-sans-arobase'; }, 'courriel sans @'],
  [e => e.tagName === 'SELECT' && !e.multiple, e => {
     e.add(new Option('Valeur inconnue', 'valeur-inconnue')); e.value = 'valeur-inconnue'; },
   'choix absent de la liste'],
  [e => e.type === 'date', e => { e.value = '2999-12-31'; }, 'date lointaine'],
  [e => ['text', 'textarea', 'search', 'tel', 'url'].includes(kindOf(e)),
   e => { e.value = 'x'.repeat(Math.max(2100, e.maxLength + 1)); }, 'texte trop long'],
  [e => e.type === 'checkbox' && e.required, e => { e.checked = false; }, 'case obligatoire décochée'],
  [e => e.type === 'checkbox', e => { e.form.querySelectorAll(`input[type=checkbox][name="${e.name}"]`)
     .forEach(box => { box.checked = false; }); }, 'aucune case cochée'],
  [e => e.type === 'file', e => {}, 'aucun fichier choisi'],
];
const breakable = f => {
  const controls = editable(f);
  for (const [test, , how] of BREAKERS) if (controls.find(test)) return how;
  return null;
};
const snapshot = f => editable(f).filter(e => !['password', 'file'].includes(e.type)).map(e =>
  [e.name, kindOf(e), ['checkbox', 'radio'].includes(e.type) ? (e.checked ? 'coché ' : 'non coché ') + e.value
   : e.tagName === 'SELECT' ? Array.from(e.selectedOptions).map(o => o.value).join('|') : e.value]);
"""

FORMS_JS = "() => {" + COMMON_JS + r"""
  return Array.from(document.forms).filter(isPost).map(f => ({
    action: actionOf(f), signature: signature(f), htmx: f.hasAttribute('hx-post'),
    breakable: breakable(f)}));
}"""

FILL_JS = "([action, sig]) => {" + COMMON_JS + r"""
  const form = find(action, sig);
  if (!form) return null;
  const known = [[/siret/i, '35600000000048'], [/siren/i, '356000000'], [/iban/i, 'FR7630006000011234567890189'],
    [/bic/i, 'AGRIFRPPXXX'], [/postal/i, '93140'], [/insee/i, '93010'], [/prefix/i, 'SWP9'],
    [/phone|telephone|tel$/i, '01 48 30 00 00'], [/email|courriel/i, 'sacha.balayage@example.org'],
    [/site|url|web/i, 'https://exemple.org/balayage'], [/horaires/i, 'Mo-Fr 09:00-12:00'],
    [/amount|montant/i, '12,50'], [/holder|titulaire/i, 'Balayage Titulaire']];
  const plausible = e => {
    const kind = kindOf(e);
    if (kind === 'number') {
      const min = e.min !== '' ? Number(e.min) : 0, max = e.max !== '' ? Number(e.max) : 1e6;
      return String([min + 1, min, 2, 3, 1].find(n => n >= min && n <= max && String(n) !== e.value) ?? min);
    }
    if (kind === 'date') return e.value === '2026-11-16' ? '2026-11-17' : '2026-11-16';
    if (kind === 'email') return 'sacha.balayage@example.org';
    if (kind === 'tel') return '01 48 30 00 00';
    if (kind === 'url') return 'https://exemple.org/balayage';
    for (const [pattern, value] of known) if (pattern.test(e.name)) return value;
    return 'Balayage ' + e.name.replace(/[-_]/g, ' ');
  };
  const controls = editable(form);
  const radios = {};
  for (const e of controls) {
    if (e.type === 'checkbox') e.checked = true;
    else if (e.type === 'radio') radios[e.name] = e;
    else if (e.tagName === 'SELECT') {
      const options = Array.from(e.options).filter(o => o.value && !o.disabled);
      if (options.length) e.value = options[options.length - 1].value;
    } else if (e.type === 'password') e.value = 'Balayage-mot-de-passe-1';
    else if (e.type !== 'file') e.value = plausible(e);
  }
  Object.values(radios).forEach(e => { e.checked = true; });
  let broken = null, how = null;
  for (const [test, apply, what] of BREAKERS) {
    const e = controls.find(test);
    if (e) { apply(e); broken = e; how = what; break; }
  }
  if (!broken) return {broken: null};
  form.noValidate = true;
  form.dataset.sweep = '1';
  return {broken: broken.name, kind: kindOf(broken), how, before: snapshot(form)};
}"""

SUBMIT_JS = r"""() => {
  const form = document.querySelector('form[data-sweep]');
  const button = Array.from(form.elements).find(e =>
    (e.tagName === 'BUTTON' && !['button', 'reset'].includes(e.type)) || (e.tagName === 'INPUT' && e.type === 'submit'));
  form.requestSubmit(button);
}"""

CHECK_JS = "([action, sig]) => {" + COMMON_JS + r"""
  const forms = Array.from(document.forms).filter(f => isPost(f) && actionOf(f) === action);
  const form = forms.find(f => f.querySelector('[aria-invalid=true]')) || forms.find(f => signature(f) === sig);
  const main = document.querySelector('main');
  const out = {found: !!form, errorPage: !!main && main.innerText.includes("Retour à l'accueil"),
               invalid: [], atTop: []};
  if (!form) return out;
  for (const e of form.querySelectorAll('[aria-invalid=true]')) {
    const ids = (e.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
    const group = e.closest('fieldset');
    const groupIds = group ? (group.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean) : [];
    const notes = ids.concat(groupIds).map(id => document.getElementById(id)).filter(Boolean)
      .filter(n => n.classList.contains('field-error'));
    const box = notes.length ? notes[0].getBoundingClientRect() : null;
    out.invalid.push({name: e.name, messages: notes.map(n => n.innerText.trim()),
                      visible: !!box && box.width > 0 && box.height > 0});
  }
  out.atTop = Array.from(form.querySelectorAll('.field-error')).filter(n =>
    !form.querySelector(`[aria-describedby~="${n.id}"]`)).map(n => n.innerText.trim());
  out.after = snapshot(form);
  out.sideways = document.documentElement.scrollWidth > document.documentElement.clientWidth + 1;
  return out;
}"""


def _key(form: dict) -> str:
    return f"{_shape(form['action'])} [{form['signature']}]"


def _listed(form: dict) -> str | None:
    shape = _shape(form["action"])
    return next((why for pattern, why in NOT_SWEPT.items() if re.search(pattern, shape)), None)


def _wait_htmx(watch: RoleWatch) -> None:
    for _ in range(50):
        if not watch.page.evaluate(
                "() => !!document.querySelector('.htmx-request, .htmx-settling, .htmx-swapping')"):
            return
        watch.page.wait_for_timeout(50)


def _check_shown(watch: RoleWatch, form: dict, filled: dict, where: str) -> list[str]:
    """The error state now shown: same form, a French message at an invalid field, shown (a
    wide table scrolls in its own box, the page does not scroll sideways), every value kept."""
    shown = watch.page.evaluate(CHECK_JS, [form["action"], form["signature"]])
    if shown["errorPage"] or not shown["found"]:
        return [f"{where}: the form is not shown again "
                f"({'error page' if shown['errorPage'] else 'no such form'})"]
    if not shown["invalid"]:
        return [f"{where}: no field marked aria-invalid"
                + (f"; message at the top: {shown['atTop']}" if shown["atTop"] else "")]
    problems = []
    for field in shown["invalid"]:
        if not field["messages"]:
            problems.append(f"{where}: {field['name']} is aria-invalid without a described message")
        elif not field["visible"]:
            problems.append(f"{where}: the message of {field['name']} is hidden")
        for message in field["messages"]:
            if not FRENCH.search(message) or ENGLISH.search(message):
                problems.append(f"{where}: message not in French: {message!r}")
    if shown["sideways"]:
        problems.append(f"{where}: the page scrolls sideways with the message shown")
    expected = [v for v in filled["before"]
                if not (v[0] == filled["broken"] and filled["kind"] == "select")]
    after = [v for v in shown["after"]
             if not (v[0] == filled["broken"] and filled["kind"] == "select")]
    if expected != after:
        lost = [f"{b[0]}: {b[2]!r} → {a[2]!r}" for b, a in zip(expected, after) if b != a]
        problems.append(f"{where}: values not kept: {lost or (expected, after)}")
    return problems


def sweep_form(watch: RoleWatch, url: str, form: dict, label: str,
               axe: bool) -> tuple[list[str], bool]:
    """On a phone: fill, break one field, send; the error state is then checked at 360×740
    and, the window widened in place, at 1280 px (axe there when ``axe``). Returns the
    problems and whether an error state was shown."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    page = watch.page
    page.set_viewport_size(MOBILE)
    page.goto(url)
    watch.settle()
    filled = page.evaluate(FILL_JS, [form["action"], form["signature"]])
    if filled is None:
        return [f"{label}: the form is no longer on {urlsplit(url).path}"], False
    where = f"{label} — {filled['broken']} ({filled['how']})"
    action = form["action"]

    def sent(response) -> bool:
        return response.request.method == "POST" and urlsplit(response.url).path == action
    try:
        if form["htmx"]:
            with page.expect_response(sent, timeout=15000) as answer:
                page.evaluate(SUBMIT_JS)
            _wait_htmx(watch)
        else:
            with page.expect_navigation(wait_until="load", timeout=15000), \
                    page.expect_response(sent, timeout=15000) as answer:
                page.evaluate(SUBMIT_JS)
    except PlaywrightTimeout:
        return [f"{where}: no answer from {action} (did a script take the submission over?)"], \
            False
    status = answer.value.status
    problems = []
    if not 400 <= status < 500 or status in (403, 429):
        problems.append(f"{where}: answered {status} (a refused value must answer 4xx)")
    for name, viewport in VIEWPORTS:
        page.set_viewport_size(viewport)
        found = _check_shown(watch, form, filled, f"{where} [{name}]")
        problems += found
        if found:
            return problems, False
    if axe:
        problems += check_page(watch, f"{where} (error state, axe)")
    return problems, True


def sweep(watch: RoleWatch, role: str, found: dict[str, tuple[str, dict]],
          swept_before: set[str]) -> tuple[list[str], list[str], list[str]]:
    """Sweep the forms found; return (problems, forms swept, forms listed as not swept)."""
    problems: list[str] = []
    swept: list[str] = []
    listed: list[str] = []
    axe_done = False
    for key, (url, form) in sorted(found.items()):
        reason = _listed(form)
        if reason:
            listed.append(f"{key}: {reason}")
            continue
        if key in swept_before:
            continue
        if not form["breakable"]:
            problems.append(f"{role}: {key} on {urlsplit(url).path}: nothing to make invalid "
                            "and not listed in NOT_SWEPT")
            continue
        label = f"{role} {urlsplit(url).path} → {form['action']}"
        found_problems, error_state = sweep_form(watch, url, form, label,
                                                 axe=form["htmx"] or not axe_done)
        problems += found_problems
        axe_done = axe_done or error_state
        swept.append(key)
        swept_before.add(key)
    watch.page.set_viewport_size(DESKTOP)
    return problems, swept, listed


SWEPT: set[str] = set()    # a form several roles reach (the account page) is swept once


def _collector(found: dict[str, tuple[str, dict]]):
    def collect(watch: RoleWatch, label: str) -> list[str]:
        for form in watch.page.evaluate(FORMS_JS):
            found.setdefault(_key(form), (watch.page.url, form))
        return []
    return collect


@pytest.mark.parametrize("role", [r for r, _ in ROLES])
def test_every_form_of_the_role_comes_back_filled_with_the_message_at_its_field(
        app, role_watch, role):  # noqa: F811 (the fixture imported above)
    started = time.monotonic()
    _lived_in(app)
    watch = role_watch(DESKTOP)
    watch.page.on("dialog", lambda dialog: dialog.accept())
    watch.sign_in(app, role)
    found: dict[str, tuple[str, dict]] = {}
    pages, _ = crawl(watch, role, on_page=_collector(found), per_shape=1)
    problems, swept, listed = sweep(watch, role, found, SWEPT)
    print(f"\n{role}: {len(pages)} pages, {len(found)} POST forms, {len(swept)} swept "
          f"at 360×740 and 1280 px, {len(listed)} listed; {time.monotonic() - started:.0f} s")
    for line in swept:
        print(f"  swept  {line}")
    for line in listed:
        print(f"  listed {line}")
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)
    assert watch.csp_violations() == []


def test_public_forms_come_back_filled_with_the_message_at_their_field(
        app, role_watch):  # noqa: F811 (the fixture imported above)
    """What a visitor can send without an account: the pass check and the application of a
    mediation place (the sign-in forms answer without naming a field, by design)."""
    watch = role_watch(DESKTOP)
    found: dict[str, tuple[str, dict]] = {}
    collect = _collector(found)
    for path in ("/verifier", "/devenir-lieu-qualifie"):
        watch.page.goto(watch.base_url + path)
        collect(watch, path)
    problems, swept, listed = sweep(watch, "public", found, set())
    assert len(swept) >= 2, (swept, listed)
    assert not problems, "\n".join(problems)
