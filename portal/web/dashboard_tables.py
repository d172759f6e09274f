"""Dashboard panels as ``Table`` objects (HTML, CSV and XLSX from one source)
and their charts. Shared by the tenant faces."""
from __future__ import annotations

from portal.domain import dashboards, labels
from portal.domain.tables import Column, Table
from portal.models.issuance import PassState
from portal.models.ledger import Nature
from portal.web import charts

COMMUNE_COLUMNS = [
    Column("commune", "Commune"), Column("held", "Reçus", "int"),
    Column("reparti", "Répartis", "int"), Column("handed_out", "Remis", "int"),
    Column("scanned", "Scannés", "int"), Column("consumed", "Mis en contre-paiement", "int"),
    Column("ratio", "Consommés / reçus", "pct"),
    Column("to_threshold", "Manquent pour l'abondement", "int"),
    Column("threshold_on", "Seuil atteint le (projection)", "date")]


def communes_table(programme, lines, total=None) -> Table:
    return Table(f"communes-{programme.prefix}", "Consommation par commune", COMMUNE_COLUMNS,
                 [line.as_row() for line in lines],
                 caption=f"Pass par commune — {programme.name} (convention art. 5 et 9)",
                 footer=total.as_row() | {"threshold_on": None, "to_threshold": None}
                 if total else None)


def carnets_table(programme, carnets) -> Table:
    return Table(f"carnets-{programme.prefix}", "Carnets", [
        Column("what", "Carnets"), Column("n", "Nombre", "int")], [
        {"what": "émis (activés)", "n": carnets.emis},
        {"what": "injectés (au moins un pass remis)", "n": carnets.injectes},
        {"what": "émis non injectés", "n": carnets.non_injectes},
        {"what": "entamés (au moins un pass scanné)", "n": carnets.entames}],
        caption="Carnets émis, injectés, non injectés et entamés")


def states_table(slug, by_state: dict) -> Table:
    return Table(slug, "Pass par état", [Column("state", "État"), Column("n", "Pass", "int")],
                 [{"state": s.label, "n": by_state.get(s, 0)} for s in PassState
                  if by_state.get(s)], caption="Pass par état")


def deadlines_table(programme, dash) -> Table:
    rows = [{"what": d.label, "on": d.on, "left": d.days_left} for d in dash.deadlines]
    rows += [{"what": f"Livraison en retard : {t.kind.label} de {t.quantity} pass pour "
                      f"{t.convention.commune.name}", "on": t.due_on,
              "left": (t.due_on - dash.today).days} for t in dash.late_tranches]
    return Table(f"echeances-{programme.prefix}", "Échéances", [
        Column("what", "Échéance"), Column("on", "Date", "date"),
        Column("left", "Jours restants", "int")], rows, caption="Échéances et retards de livraison")


FLOW_NATURES = [Nature.DISTRIBUTION, Nature.SCAN, Nature.CONTRE_PAIEMENT]
FLOW_LABELS = {Nature.DISTRIBUTION: "remis", Nature.SCAN: "scannés",
               Nature.CONTRE_PAIEMENT: "mis en contre-paiement"}


def monthly_table(programme, flows: dict, slug: str) -> Table:
    months = sorted(flows)
    rows = [{"month": m, **{n.value: flows[m].get(n, 0) for n in FLOW_NATURES}} for m in months]
    return Table(slug, "Évolution mensuelle", [Column("month", "Mois")] + [
        Column(n.value, f"Pass {FLOW_LABELS[n]}", "int") for n in FLOW_NATURES], rows,
        caption="Pass remis, scannés et mis en contre-paiement par mois")


def monthly_chart(table: Table) -> charts.Chart:
    rows = list(table.rows)
    return charts.line_chart(table.caption, [r["month"] for r in rows],
                             {FLOW_LABELS[n]: [r[n.value] for r in rows] for n in FLOW_NATURES})


def communes_chart(table: Table) -> charts.Chart:
    rows = list(table.rows)
    return charts.bar_chart("Pass mis en contre-paiement par commune",
                            [r["commune"] for r in rows], [r["consumed"] for r in rows],
                            label_header="Commune")


def structures_table(commune, programme, lines) -> Table:
    return Table(f"structures-{commune.slug}-{programme.prefix}", "Par structure prescriptrice", [
        Column("name", "Structure"), Column("stock", "Pass en stock (répartis)", "int"),
        Column("distributions", "Remises", "int"), Column("handed_out", "Pass remis", "int")],
        [vars(line) for line in lines], caption="Pass par structure prescriptrice")


def publics_table(commune, programme, counts: dict) -> Table:
    return Table(f"publics-{commune.slug}-{programme.prefix}", "Par public cible", [
        Column("public", "Public"), Column("n", "Pass remis", "int")],
        [{"public": labels.target_public(k), "n": n} for k, n in counts.items()],
        caption="Pass remis par public cible")


def questionnaire_table(commune, programme, answers: dict) -> Table:
    """Questions and answers by their labels, in the form's order (codes are
    stored; people read labels: issue 14 item 16)."""
    order = {q: (i, list(options)) for i, (q, (_label, options)) in
             enumerate(labels.QUESTIONNAIRE.items())}

    def rank(question: str, answer: str) -> tuple:
        i, options = order.get(question, (len(order), []))
        return (i, question, options.index(answer) if answer in options else len(options), answer)

    rows = sorted(((q, a, n) for q, by in answers.items() for a, n in by.items()),
                  key=lambda r: rank(r[0], r[1]))
    return Table(f"questionnaire-{commune.slug}-{programme.prefix}", "Questionnaire", [
        Column("question", "Question"), Column("answer", "Réponse"),
        Column("n", "Bénéficiaires", "int")],
        [{"question": labels.question(q), "answer": labels.answer(q, a), "n": n}
         for q, a, n in rows],
        caption="Résultats agrégés du questionnaire (art. 8)")


COMMUNE_FILTERS = {"": "toutes les communes",
                   "seuil": "seuil d'abondement atteint",
                   "en-route": "seuil non atteint, date estimable",
                   "non-estimable": "seuil non atteint, sans rythme de consommation"}


def keep(line, commune_filter: str) -> bool:
    if commune_filter == "seuil":
        return line.threshold_reached
    if commune_filter == "en-route":
        return not line.threshold_reached and line.threshold_on is not None
    if commune_filter == "non-estimable":
        return not line.threshold_reached and line.threshold_on is None
    return True


def metropole_panels(session, programme, today, commune_filter: str = "") -> dict:
    """Panel name → builder of its Table (only the panel asked for is computed)."""
    def communes():
        lines = [line for line in dashboards.commune_figures(session, programme, today)
                 if keep(line, commune_filter)]
        return communes_table(programme, lines, dashboards.total_of(lines))

    def deadlines():
        return deadlines_table(programme, dashboards.MetropoleDashboard(
            programme, today, None, [], None, 0, None, dashboards.deadlines(programme, today),
            dashboards.late_tranches(session, programme, today)))

    def states():
        by_state: dict = {}
        for per_state in dashboards.states_by_commune(session, programme.id).values():
            for state, n in per_state.items():
                by_state[state] = by_state.get(state, 0) + n
        return states_table(f"etats-{programme.prefix}", by_state)

    return {"communes": communes,
            "carnets": lambda: carnets_table(programme, dashboards.carnets(session, programme)),
            "etats": states,
            "echeances": deadlines,
            "evolution": lambda: monthly_table(
                programme, dashboards.monthly_flows(session, programme.id, FLOW_NATURES),
                f"evolution-{programme.prefix}")}


def commune_panels(session, programme, commune, today) -> dict:
    """Panel name → builder of its Table, for the commune's own figures only."""
    def states():
        return states_table(f"etats-{commune.slug}-{programme.prefix}",
                            dashboards.states_by_commune(session, programme.id, commune.id)
                            .get(commune.id, {}))
    return {"consommation": lambda: communes_table(
                programme, dashboards.commune_figures(session, programme, today, [commune.id])),
            "etats": states,
            "structures": lambda: structures_table(
                commune, programme, dashboards.structure_lines(session, programme, commune)),
            "publics": lambda: publics_table(
                commune, programme, dashboards.by_target_public(session, programme, commune)),
            "questionnaire": lambda: questionnaire_table(
                commune, programme, dashboards.questionnaire(session, programme, commune)),
            "evolution": lambda: monthly_table(
                programme, dashboards.monthly_flows(session, programme.id, FLOW_NATURES,
                                                    commune.id),
                f"evolution-{commune.slug}-{programme.prefix}")}


def chart_of(table: Table) -> charts.Chart | None:
    """The chart a panel asks for (``Table.chart``), drawn from its rows."""
    if not table.chart:
        return None
    kind, label_key, value_key = table.chart
    rows = list(table.rows)
    labels = [str(r[label_key]) for r in rows]
    values = [int(r[value_key] or 0) for r in rows]
    if kind == "line":
        column = next((c.label for c in table.columns if c.key == value_key), value_key)
        return charts.line_chart(table.caption or table.title, labels, {column: values})
    return charts.bar_chart(table.caption or table.title, labels, values)
