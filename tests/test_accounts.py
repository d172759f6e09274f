"""Issue 13: first start, invitations, members, action journal, sessions."""
from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from conftest import Browser, make_app
from helpers import tenant
from portal.domain import accounts, clock, invitations, journal, members, onboarding
from portal.domain.ledger import Actor
from portal.domain.permissions import Role, rights_table_markdown
from portal.extensions import db
from portal.models import AuthSession, Invitation, JournalEntry, Membership, User, utcnow

DEMO = "@demo.pass-numerique.fr"
LINK = re.compile(r"https?://[^\s]+/invitation/([A-Za-z0-9_-]+)")


def _link_from(text: str) -> str:
    match = LINK.search(text)
    assert match, text
    return "/invitation/" + match.group(1)


def _last_mail(app):
    return app.extensions["outbox"][-1]


def _count(model, *criteria):
    return db.session.execute(sa.select(sa.func.count()).select_from(model).where(*criteria)
                              ).scalar_one()


# ------------------------------------------------------------------ 1. first start

def test_setup_creates_the_issuer_and_a_single_use_link_then_refuses(empty_app):
    runner = empty_app.test_cli_runner()
    result = runner.invoke(args=["setup", "--email", "Premiere.Admin@aptic.example"])
    assert result.exit_code == 0, result.output
    first_link = _link_from(result.output)
    # Run again before the link is used: a new link, the old one is dead.
    result = runner.invoke(args=["setup", "--email", "premiere.admin@aptic.example"])
    assert result.exit_code == 0, result.output
    link = _link_from(result.output)
    browser = Browser(empty_app)
    assert browser.get(first_link).status_code == 410
    page = browser.get(link)
    assert page.status_code == 200 and "premiere.admin@aptic.example" in page.text
    response = browser.post(link, {"full_name": "Première Admin",
                                   "password": "un-mot-de-passe-solide",
                                   "confirm_password": "un-mot-de-passe-solide"})
    # An #APTIC administrator enrols the second factor before anything else.
    assert response.status_code == 303 and "activation" in response.location
    browser.pass_second_factor("premiere.admin@aptic.example", response.location)
    home = browser.get("/mandataire/aptic/")
    assert home.status_code == 200
    assert browser.get(link).status_code == 410            # used once
    result = runner.invoke(args=["setup", "--email", "autre@aptic.example"])
    assert result.exit_code != 0 and "existe déjà" in result.output
    with empty_app.app_context():
        assert onboarding.administrator_exists(db.session)
        actions = db.session.execute(sa.select(JournalEntry.action)).scalars().all()
        assert {"setup", "invitation.sent", "invitation.cancelled",
                "invitation.accepted"} <= set(actions)


def test_setup_without_email_and_without_a_terminal_is_refused(empty_app):
    result = empty_app.test_cli_runner().invoke(args=["setup"])
    assert result.exit_code != 0 and "--email" in result.output


def test_setup_refuses_a_bad_address_in_french(empty_app):
    result = empty_app.test_cli_runner().invoke(args=["setup", "--email", "pas-une-adresse"])
    assert result.exit_code != 0 and "adresse électronique valide" in result.output
    with empty_app.app_context():
        assert _count(Invitation) == 0


# Production refuses to start without a queue (REDIS_URL); tasks run inline here.
PRODUCTION_QUEUE = {"REDIS_URL": "redis://127.0.0.1:6379/12", "JOBS_INLINE": "sync"}


def test_demo_data_is_refused_outside_development(leg, tmp_path):
    url = leg.new_database(False, tmp_path)
    try:
        app = make_app(url, PORTAL_ENV="production", SECRET_KEY="x" * 32,
                       PASS_MAC_KEYS="D1:ZGV2LW9ubHktcGFzcy1tYWMta2V5LW51bWJlci1vbmU=",
                       LEDGER_HMAC_KEY="ZGV2LW9ubHktbGVkZ2VyLWhtYWMta2V5",
                       **PRODUCTION_QUEUE)
        result = app.test_cli_runner().invoke(args=["demo-data"])
        assert result.exit_code != 0 and "réservées au développement" in result.output
        # Nor are verification codes ever printed there.
        result = app.test_cli_runner().invoke(args=["demo-pass"])
        assert result.exit_code != 0 and "Réservé au développement" in result.output
        with app.app_context():
            assert _count(User) == 0
            db.session.remove()
            db.engine.dispose()
    finally:
        leg.drop(url)


# ------------------------------------------------------------------ 5. invitations

def _invite(browser, email, role, slug="aptic", kind="mandataire"):
    return browser.post(f"/{kind}/{slug}/membres/inviter", {"email": email, "role": role})


def test_invitation_link_works_once_for_a_new_account(app, browser):
    browser.login("aptic.admin")
    response = _invite(browser, "Nouvelle.Agente@example.org", "aptic_agent")
    assert response.status_code == 303
    mail = _last_mail(app)
    assert mail["To"] == "nouvelle.agente@example.org"
    link = _link_from(mail.get_content())
    newcomer = Browser(app)
    assert newcomer.get(link).status_code == 200
    response = newcomer.post(link, {"full_name": "Nouvelle Agente",
                                    "password": "mot-de-passe-agente",
                                    "confirm_password": "mot-de-passe-agente"})
    assert response.status_code == 303 and response.location.endswith("/mandataire/aptic/")
    assert newcomer.get("/mandataire/aptic/").status_code == 200
    assert Browser(app).get(link).status_code == 410
    with app.app_context():
        user = accounts.find_user(db.session, "nouvelle.agente@example.org")
        assert [m.role for m in user.memberships] == [Role.APTIC_AGENT]


def test_invitation_form_errors_stay_next_to_the_field_with_values_kept(app, browser):
    browser.login("aptic.admin")
    response = _invite(browser, "pas-une-adresse", "aptic_agent")
    assert response.status_code == 422
    page = response.text
    assert 'value="pas-une-adresse"' in page
    assert 'id="email-error"' in page and "n'est pas une adresse électronique valide" in page
    assert '<option value="aptic_agent" selected>' in page
    # A role of another kind of tenant is refused next to the role field.
    response = _invite(browser, "x@example.org", "referent")
    assert response.status_code == 422 and 'id="role-error"' in response.text
    assert 'value="x@example.org"' in response.text
    with app.app_context():
        assert _count(Invitation) == 0


def test_invitation_expires_after_seven_days(app):
    with app.app_context():
        aptic = tenant(db.session, "aptic")
        old = utcnow() - dt.timedelta(days=7, minutes=1)
        _, token = invitations.invite(db.session, email="tard@example.org", tenant=aptic,
                                      role=Role.APTIC_AGENT, invited_by=None, now=old)
        db.session.commit()
    browser = Browser(app)
    assert browser.get(f"/invitation/{token}").status_code == 410
    response = browser.post(f"/invitation/{token}", {
        "full_name": "Tard", "password": "mot-de-passe-tardif", "confirm_password": "mot-de-passe-tardif"})
    assert response.status_code == 410
    with app.app_context():
        assert accounts.find_user(db.session, "tard@example.org") is None


def test_invitation_cannot_be_used_by_another_addresss_account(app):
    with app.app_context():
        aptic = tenant(db.session, "aptic")
        invitation, token = invitations.invite(db.session, email="cible@example.org",
                                               tenant=aptic, role=Role.APTIC_ADMIN,
                                               invited_by=None)
        db.session.commit()
        invitation_id = invitation.id
    intruder = Browser(app).login("referent.bondy")
    assert intruder.get(f"/invitation/{token}").status_code == 403
    assert intruder.post(f"/invitation/{token}", {}).status_code == 403
    with app.app_context():
        assert db.session.get(Invitation, invitation_id).accepted_at is None
        referent = accounts.find_user(db.session, "referent.bondy" + DEMO)
        assert all(m.role is not Role.APTIC_ADMIN for m in referent.memberships)


def test_existing_account_gains_the_membership_and_mail_reveals_nothing(app, browser):
    browser.login("aptic.admin")
    assert _invite(browser, "mgp.agent" + DEMO, "aptic_agent").status_code == 303
    existing = _last_mail(app)
    assert _invite(browser, "inconnu@example.org", "aptic_agent").status_code == 303
    unknown = _last_mail(app)

    def neutral(message):
        return LINK.sub("LIEN", message.get_content())
    # Same subject and same text whether or not an account exists.
    assert existing["Subject"] == unknown["Subject"]
    assert neutral(existing) == neutral(unknown)
    link = _link_from(existing.get_content())
    guest = Browser(app)
    page = guest.get(link)
    assert page.status_code == 200 and 'autocomplete="current-password"' in page.text
    wrong = guest.post(link, {"password": "pas-le-bon-mot-de-passe"})
    assert wrong.status_code == 422 and 'id="password-error"' in wrong.text
    response = guest.post(link, {"password": "demo-pass-numerique"})
    assert response.status_code == 303
    with app.app_context():
        user = accounts.find_user(db.session, "mgp.agent" + DEMO)
        assert {m.role for m in user.memberships} == {Role.MGP_AGENT, Role.APTIC_AGENT}


def test_resend_replaces_the_link_and_cancel_kills_it(app, browser):
    browser.login("aptic.admin")
    _invite(browser, "renvoi@example.org", "aptic_agent")
    first = _link_from(_last_mail(app).get_content())
    with app.app_context():
        invitation_id = db.session.execute(sa.select(Invitation.id).where(
            Invitation.email == "renvoi@example.org")).scalar_one()
    assert browser.post(f"/mandataire/aptic/membres/invitations/{invitation_id}/renvoyer"
                        ).status_code == 303
    second = _link_from(_last_mail(app).get_content())
    assert first != second
    guest = Browser(app)
    assert guest.get(first).status_code == 410 and guest.get(second).status_code == 200
    # A second invitation of the same address while one is pending is refused.
    again = _invite(browser, "renvoi@example.org", "aptic_agent")
    assert again.status_code == 422 and "déjà en attente" in again.text
    assert browser.post(f"/mandataire/aptic/membres/invitations/{invitation_id}/annuler"
                        ).status_code == 303
    assert guest.get(second).status_code == 410
    # Another tenant's administrator cannot touch it (404, nothing changes).
    other = Browser(app).login("mgp.admin")
    assert other.post(f"/metropole/mgp/membres/invitations/{invitation_id}/renvoyer"
                      ).status_code == 404


# ------------------------------------------------------------------ 5. members

def _membership_id(app, email, slug):
    with app.app_context():
        return db.session.execute(
            sa.select(Membership.id).join(User).where(
                User.email == email + DEMO,
                Membership.tenant_id == tenant(db.session, slug).id)).scalar_one()


def test_role_change_and_removal_end_the_sessions_at_once(app, browser):
    agent = Browser(app).login("mgp.agent")
    assert agent.get("/metropole/mgp/").status_code == 200
    copied = Browser(app)
    copied.client.set_cookie("session", agent.client.get_cookie("session").value,
                             domain="localhost")
    assert copied.get("/metropole/mgp/").status_code == 200

    browser.login("mgp.admin")
    membership_id = _membership_id(app, "mgp.agent", "mgp")
    response = browser.post(f"/metropole/mgp/membres/{membership_id}/role", {"role": "mgp_admin"})
    assert response.status_code == 303
    with app.app_context():
        assert db.session.get(Membership, membership_id).role is Role.MGP_ADMIN
    response = browser.post(f"/metropole/mgp/membres/{membership_id}/retirer")
    assert response.status_code == 303
    for who in (agent, copied):
        response = who.get("/metropole/mgp/")
        assert response.status_code == 302 and "/connexion" in response.location
    with app.app_context():
        assert db.session.get(Membership, membership_id) is None
        user = accounts.find_user(db.session, "mgp.agent" + DEMO)
        assert _count(AuthSession, AuthSession.user_id == user.id) == 0
        actions = [e.action for e in journal.entries_for(db.session, tenant(db.session, "mgp"))]
        assert "member.removed" in actions and "member.role_changed" in actions


def test_the_last_administrator_can_be_neither_removed_nor_demoted(app, browser):
    browser.login("hub.admin")
    membership_id = _membership_id(app, "hub.admin", "francilin")
    with app.app_context():
        hub = tenant(db.session, "francilin")
        admins = [m for m in members.members_of(db.session, hub) if m.role is Role.HUB_ADMIN]
        assert len(admins) == 1
    response = browser.post(f"/hub/francilin/membres/{membership_id}/role", {"role": "hub_agent"})
    assert response.status_code == 422 and "dernier administrateur" in response.text
    assert f'id="role-{membership_id}-error"' in response.text
    response = browser.post(f"/hub/francilin/membres/{membership_id}/retirer")
    assert response.status_code == 409
    with app.app_context():
        assert db.session.get(Membership, membership_id).role is Role.HUB_ADMIN


# ------------------------------------------------------------------ 5. bulk invitation

def _upload(browser, content: bytes, url="/mandataire/aptic/membres/import"):
    import io
    return browser.post(url, {"file": (io.BytesIO(content), "membres.csv")},
                        content_type="multipart/form-data")


def test_csv_import_reports_each_line_and_writes_nothing_until_confirmed(app, browser):
    browser.login("aptic.admin")
    content = ("\ufeffadresse;rôle\n"
               "un@example.org;aptic_agent\n"
               "deux@example.org;Administrateur #APTIC\n"
               "UN@example.org;aptic_agent\n"              # duplicate of line 2
               "trois@example.org;referent\n"             # role of another kind
               "quatre@example.org;chef\n"                # unknown role
               "cinq@example.org\taptic_agent\n"          # wrong separator
               "pas-une-adresse;aptic_agent\n"
               f"aptic.agent{DEMO};aptic_agent\n")        # already a member
    with app.app_context():
        before = _count(Invitation)
    response = _upload(browser, content.encode("utf-8"))
    assert response.status_code == 200
    page = response.text
    assert "2 invitation(s) à envoyer" in page and "1 ligne(s) déjà à jour" in page
    assert "Doublon : adresse déjà présente ligne 2" in page
    assert "Rôle inconnu « referent »" in page and "Rôle inconnu « chef »" in page
    assert "deux colonnes attendues" in page
    assert "n'est pas une adresse électronique valide" in page
    assert "Déjà membre" in page
    with app.app_context():
        assert _count(Invitation) == before                 # preview writes nothing
    sent_before = len(app.extensions["outbox"])
    csv_text = re.search(r'<textarea name="csv_text"[^>]*>(.*?)</textarea>', response.get_data(as_text=True),
                         re.S).group(1)
    import html
    response = browser.post("/mandataire/aptic/membres/import",
                            {"confirm": "1", "csv_text": html.unescape(csv_text)})
    assert response.status_code == 303
    with app.app_context():
        created = db.session.execute(sa.select(Invitation.email, Invitation.role).where(
            Invitation.email.in_(["un@example.org", "deux@example.org"]))).all()
        assert sorted(created) == [("deux@example.org", Role.APTIC_ADMIN),
                                   ("un@example.org", Role.APTIC_AGENT)]
        assert _count(Invitation) == before + 2
    assert len(app.extensions["outbox"]) == sent_before + 2


def test_csv_import_without_bom_comma_separated_and_windows_encoding(app, browser):
    browser.login("aptic.admin")
    response = _upload(browser, "six@example.org,Agent #APTIC\r\n".encode("cp1252"))
    assert response.status_code == 200 and "1 invitation(s) à envoyer" in response.text
    response = _upload(browser, "sept@example.org;Agent #APTIC\n".encode("utf-8"))
    assert response.status_code == 200 and "1 invitation(s) à envoyer" in response.text


@pytest.mark.parametrize("content, message", [
    (b"", "Choisissez un fichier CSV"),
    (b"adresse;role\n", "Aucune ligne"),
    (b"\x00\x01binary", "n'est pas un fichier texte"),
])
def test_csv_import_unreadable_files_get_a_french_message(app, browser, content, message):
    browser.login("aptic.admin")
    if content:
        response = _upload(browser, content)
    else:
        response = browser.post("/mandataire/aptic/membres/import", {})
    assert response.status_code == 422 and message in response.text
    assert 'id="file-error"' in response.text or message == "Choisissez un fichier CSV"


# ------------------------------------------------------------------ 6. journal

def test_journal_refuses_update_and_delete_in_the_database(app):
    with app.app_context():
        entry = journal.record(db.session, action="member.removed", actor=Actor(None, None),
                               tenant_id=None, target="membre", target_id=1,
                               before={"email": "x@example.org"})
        db.session.commit()
        for statement in (f"UPDATE journal_entries SET action = 'falsifié' WHERE id = {entry.id}",
                          f"DELETE FROM journal_entries WHERE id = {entry.id}"):
            with pytest.raises(sa.exc.DatabaseError) as caught:
                db.session.execute(sa.text(statement))
                db.session.flush()
            assert "append-only" in str(caught.value)
            db.session.rollback()
        assert db.session.get(JournalEntry, entry.id).action == "member.removed"


def test_tenant_admins_read_and_export_their_journal_others_see_only_theirs(app, browser):
    browser.login("referent.bondy")
    # Sign-in failures go to the journal of the account's tenants.
    stranger = Browser(app)
    stranger.client.post("/connexion", data={"email": "referent.montreuil" + DEMO,
                                              "password": "faux", "csrf_token": stranger.csrf_token()})
    page = browser.get("/commune/bondy/journal-des-actions")
    assert page.status_code == 200
    assert "<td>Échec de connexion</td>" not in page.text        # montreuil's, not bondy's
    montreuil = Browser(app).login("referent.montreuil")
    page = montreuil.get("/commune/montreuil/journal-des-actions")
    assert "<td>Échec de connexion</td>" in page.text and "referent.montreuil" in page.text
    export = montreuil.get("/commune/montreuil/journal-des-actions.csv")
    assert export.status_code == 200 and export.data.startswith("\ufeff".encode())
    assert "attachment" in export.headers["Content-Disposition"]
    assert "Échec de connexion" in export.get_data(as_text=True)
    # #APTIC oversees everything; an agent without the permission gets 403.
    aptic = Browser(app).login("aptic.admin")
    assert "<td>Échec de connexion</td>" in aptic.get("/mandataire/aptic/journal-des-actions").text
    agent = Browser(app).login("aptic.agent")
    assert agent.get("/mandataire/aptic/journal-des-actions").status_code == 403


def test_lockout_is_journaled(app):
    stranger = Browser(app)
    for _ in range(8):
        stranger.client.post("/connexion", data={"email": "referent.pantin" + DEMO,
                                                  "password": "faux",
                                                  "csrf_token": stranger.csrf_token()})
    with app.app_context():
        pantin = tenant(db.session, "pantin")
        actions = [e.action for e in journal.entries_for(db.session, pantin)]
    assert "signin.locked" in actions and "signin.failed" in actions


def test_decisions_write_the_journal(app):
    from portal.domain import operateurs
    from portal.models import Qualification, Tenant
    with app.app_context():
        structure = db.session.execute(sa.select(Tenant).where(
            Tenant.slug == "bondy-centre-social")).scalar_one()
        aptic = tenant(db.session, "aptic")
        profile = operateurs.profile_of(db.session, structure)
        target = (Qualification.SUSPENDU if profile.qualification is Qualification.QUALIFIE
                  else Qualification.QUALIFIE)
        operateurs.set_qualification(db.session, structure, target, reason="contrôle",
                                     actor=Actor(None, aptic.id))
        db.session.commit()
        entry = journal.entries_for(db.session, structure, limit=1)[0]
        assert entry.action == "qualification.decided"
        assert entry.after["qualification"] == target.label
        # The commanditaire oversees the structures of its perimeter.
        assert entry in journal.entries_for(db.session, tenant(db.session, "mgp"))
        details = operateurs.submit_bank_details(
            db.session, structure, holder="Centre social", iban="FR7630006000011234567890189",
            bic="AGRIFRPP", actor=Actor(None, structure.id))
        operateurs.review_bank_details(db.session, details, accept=False, reason="RIB illisible",
                                       actor=Actor(None, aptic.id))
        from portal.domain import mandate
        from portal.models import Habilitation
        habilitation = db.session.execute(sa.select(Habilitation).where(
            Habilitation.revoked_on.is_(None))).scalars().first()
        mandate.revoke_habilitation(db.session, habilitation, on=clock.today(),
                                    reason="départ", actor=Actor(None, aptic.id))
        db.session.commit()
        entries = journal.entries_for(db.session, aptic, limit=5)
        assert {"iban.reviewed", "habilitation.revoked"} <= {e.action for e in entries}
        reviewed = next(e for e in entries if e.action == "iban.reviewed")
        assert reviewed.tenant_id == structure.id and reviewed.after["motif"] == "RIB illisible"


# ------------------------------------------------------------------ 7. sessions

def _session_row(app, email):
    with app.app_context():
        user = accounts.find_user(db.session, email + DEMO)
        return db.session.execute(sa.select(AuthSession.id).where(
            AuthSession.user_id == user.id)).scalars().all()


def _age(app, session_ids, **values):
    with app.app_context():
        db.session.execute(sa.update(AuthSession).where(AuthSession.id.in_(session_ids))
                           .values(**values))
        db.session.commit()


@pytest.mark.parametrize("column, age", [("last_seen_at", dt.timedelta(hours=3)),
                                         ("created_at", dt.timedelta(hours=13))])
def test_sessions_expire_after_inactivity_and_absolute_lifetime(app, column, age):
    agent = Browser(app).login("mgp.agent")
    ids = _session_row(app, "mgp.agent")
    assert len(ids) == 1
    _age(app, ids, **{column: utcnow() - age})
    response = agent.get("/metropole/mgp/")
    assert response.status_code == 302 and "/connexion" in response.location
    assert _session_row(app, "mgp.agent") == []


def test_expired_rows_are_purged_at_sign_in(app):
    Browser(app).login("mgp.agent")
    stale = _session_row(app, "mgp.agent")
    _age(app, stale, last_seen_at=utcnow() - dt.timedelta(days=2))
    Browser(app).login("hub.agent")
    with app.app_context():
        assert _count(AuthSession, AuthSession.id.in_(stale)) == 0


def test_sensitive_action_asks_for_the_password_again(app, browser):
    browser.login("mgp.admin")
    membership_id = _membership_id(app, "mgp.agent", "mgp")
    _age(app, _session_row(app, "mgp.admin"),
         password_confirmed_at=utcnow() - dt.timedelta(minutes=6))
    url = f"/metropole/mgp/membres/{membership_id}/role"
    response = browser.post(url, {"role": "mgp_admin"},
                            headers={"Referer": "http://localhost/metropole/mgp/membres"})
    assert response.status_code == 303 and "/confirmer-mot-de-passe" in response.location
    with app.app_context():
        assert db.session.get(Membership, membership_id).role is Role.MGP_AGENT
    wrong = browser.post(response.location, {"password": "pas-le-bon"})
    assert wrong.status_code == 422 and 'id="password-error"' in wrong.text
    confirmed = browser.post(response.location, {"password": "demo-pass-numerique"})
    assert confirmed.status_code == 303 and confirmed.location.endswith("/metropole/mgp/membres")
    assert browser.post(url, {"role": "mgp_admin"}).status_code == 303
    with app.app_context():
        assert db.session.get(Membership, membership_id).role is Role.MGP_ADMIN


def test_sensitive_endpoints_exist(app):
    from portal.web.sessions import SENSITIVE_ENDPOINTS
    assert SENSITIVE_ENDPOINTS <= set(app.view_functions)


# ------------------------------------------------------------------ README

def test_readme_rights_table_matches_the_permissions():
    from portal.config import PROJECT_ROOT
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert rights_table_markdown() in readme


def test_wrong_second_factor_codes_are_journaled(app):
    admin = Browser(app).login("mgp.admin", second_factor=False)
    response = admin.post("/connexion/verification", {"code": "000000"})
    assert response.status_code == 422
    with app.app_context():
        entry = journal.entries_for(db.session, tenant(db.session, "mgp"), limit=1)[0]
        assert entry.action == "signin.failed" and entry.after["étape"] == "second facteur"
        assert entry.ip == "127.0.0.1"


def test_no_two_routes_share_a_url_and_method(app):
    """A route registered on every tenant blueprint (members, journal) must
    not shadow a tenant's own page with the same path."""
    seen = {}
    for rule in app.url_map.iter_rules():
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            key = (rule.rule, method)
            assert key not in seen, (key, seen.get(key), rule.endpoint)
            seen[key] = rule.endpoint
