"""The stock equation under random sequences of operations (Hypothesis, stateful).

Each example creates its own programme (the database is not reset between
examples) and applies orders, payment references, activations and moves
through ``custody.move`` for every other nature of ``custody.TRANSITIONS``, on
randomly chosen pass. A move that includes a pass in a state the nature does
not allow, or held by someone else than expected, is refused with
``Conflict`` and changes nothing. After every step, for that programme:

(a) pass issued (EMISSION entries) = sum of the ledger balances = pass rows;
(b) the ledger's balance of each position (state, holder) = the pass table's count;
(c) in euros: the EMISSION amounts = issued × face value, and each position's
    balance in euros (amounts in − amounts out) = its count × face value;
and (d) at the end of each example, ``ledger.verify`` finds the chain intact.
"""
from __future__ import annotations

import itertools
from collections import defaultdict

import pytest
import sqlalchemy as sa
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition, rule,
                                 run_state_machine_as_test)

from helpers import tenant
from portal.domain import custody, issuance, ledger, serials
from portal.domain.errors import Conflict
from portal.domain.ledger import Actor
from portal.domain.permissions import TenantKind
from portal.models import Carnet, LedgerEntry, Pass, PassOrder, Programme, Tenant
from portal.models.issuance import PassState as S
from portal.models.ledger import Nature as N

# Activation is only done by issuance.activate_order (it needs the payment reference).
MOVES = [nature for nature in custody.TRANSITIONS if nature is not N.ACTIVATION]
# Drawn three times as often, so that pass get to the end of their life cycle.
FORWARD = {N.LIVRAISON, N.REPARTITION, N.DISTRIBUTION, N.SCAN, N.CONTRE_PAIEMENT, N.PAIEMENT}


def fresh_prefixes():
    """QA, QB, …, QZ, QAA, …: the prefixes whose typos the check digits catch."""
    for n in itertools.count(1):
        letters = ""
        while n:
            n, r = divmod(n - 1, 26)
            letters = chr(ord("A") + r) + letters
        prefix = "Q" + letters
        if serials.undetected_prefix_errors(prefix) == []:
            yield prefix


def euros(session, programme_id: int) -> tuple[int, dict]:
    """From the ledger: the amount of the EMISSION entries, and per position
    (state, holder) the amounts in minus the amounts out."""
    emitted, totals = 0, defaultdict(int)
    entries = LedgerEntry.__table__.c
    flows = session.execute(
        sa.select(entries.nature, entries.from_state, entries.from_holder_id, entries.to_state,
                  entries.to_holder_id, sa.func.sum(entries.amount_cents))
        .where(entries.programme_id == programme_id)
        .group_by(entries.nature, entries.from_state, entries.from_holder_id, entries.to_state,
                  entries.to_holder_id))
    for nature, from_state, from_holder, to_state, to_holder, cents in flows:
        if nature == N.EMISSION:
            emitted += int(cents)
        totals[(S(to_state), to_holder)] += int(cents)
        if from_state is not None:
            totals[(S(from_state), from_holder)] -= int(cents)
    return emitted, {position: cents for position, cents in totals.items() if cents}


def stock_machine(session) -> type[RuleBasedStateMachine]:
    prefixes = fresh_prefixes()
    mgp, aptic = tenant(session, "mgp").id, tenant(session, "aptic").id
    communes = sorted(session.execute(sa.select(Tenant.id).where(
        Tenant.kind == TenantKind.COMMUNE)).scalars())
    structures_of: dict[int, list[int]] = defaultdict(list)
    commune_of: dict[int, int] = {}
    for structure_id, commune_id in session.execute(
            sa.select(Tenant.id, Tenant.parent_id).where(Tenant.kind == TenantKind.STRUCTURE)
            .order_by(Tenant.id)):
        structures_of[commune_id].append(structure_id)
        commune_of[structure_id] = commune_id
    assert communes and all(structures_of[c] for c in communes)
    session.commit()

    class StockEquation(RuleBasedStateMachine):
        """One programme, random operations, the stock equation after each one."""

        @initialize(face_value=st.sampled_from([1000, 500, 2500]),
                    per_carnet=st.sampled_from([1, 5, 10]), stock=st.integers(20, 200),
                    first_order=st.integers(0, 4))
        def new_programme(self, face_value, per_carnet, stock, first_order):
            """A new programme (new prefix), with an activated first order or none."""
            prefix = next(prefixes)
            programme = issuance.create_programme(
                session, commanditaire=tenant(session, "mgp"), issuer=tenant(session, "aptic"),
                name=f"Programme {prefix}", prefix=prefix, face_value_cents=face_value,
                pass_per_carnet=per_carnet, total_stock=stock)
            self.pid, self.face_value = programme.id, face_value
            self.commit()
            carnets = min(first_order, stock // per_carnet)
            if carnets:
                order = issuance.order_carnets(session, programme, carnets,
                                               actor=Actor(None, aptic))
                issuance.record_payment_reference(session, order, f"MANDAT-{order.id}",
                                                  actor=Actor(None, mgp))
                issuance.activate_order(session, order, actor=Actor(None, aptic))
                self.commit()

        # ------------------------------------------------------------ helpers

        def commit(self):
            session.commit()
            self.memo = {}          # what the preconditions computed is stale now

        def memoized(self, key, compute):
            if key not in self.memo:
                self.memo[key] = compute()
            return self.memo[key]

        def programme(self) -> Programme:
            return session.get(Programme, self.pid)

        def orders(self, *, paid: bool | None = None) -> list[int]:
            """Orders not activated yet (with or without their payment reference)."""
            query = sa.select(PassOrder.id).where(PassOrder.programme_id == self.pid,
                                                  PassOrder.activated_at.is_(None))
            if paid is not None:
                query = query.where(PassOrder.payment_reference.is_not(None) if paid
                                    else PassOrder.payment_reference.is_(None))
            return self.memoized(("orders", paid), lambda: list(
                session.execute(query.order_by(PassOrder.id)).scalars()))

        def positions(self) -> dict[int, tuple[S, int | None]]:
            return {pid: (S(state), holder) for pid, state, holder in session.execute(
                sa.select(Pass.id, Pass.state, Pass.holder_id)
                .where(Pass.programme_id == self.pid).order_by(Pass.id))}

        def target(self, nature: N, holder: int | None, data) -> int | None:
            """Where a move of this nature sends pass now held by ``holder``."""
            if nature is N.LIVRAISON:
                return data.draw(st.sampled_from(communes), label="commune")
            if nature is N.REPARTITION:                       # holder: a commune
                return data.draw(st.sampled_from(structures_of[holder]), label="structure")
            if nature is N.REPRISE:                           # holder: a structure
                return commune_of[holder]
            if nature is N.SCAN:                              # an opérateur of the commune
                return data.draw(st.sampled_from(structures_of[commune_of[holder]]),
                                 label="opérateur")
            if nature in (N.RESTITUTION, N.EXPIRATION):
                return mgp
            if nature is N.ANNULATION:
                return None
            # distribution, annulation de scan, contre-paiement, paiement, blocage
            return holder

        # ------------------------------------------------------------ rules

        @rule(carnets=st.integers(1, 6), paid_at_once=st.booleans())
        def order(self, carnets, paid_at_once):
            """An order (refused beyond the programme's stock); paid and activated at once,
            or left to the two rules below."""
            programme = self.programme()
            issued = ledger.issued_total(session, self.pid)
            if issued + carnets * programme.pass_per_carnet > programme.total_stock:
                with pytest.raises(Conflict, match="Commande refusée"):
                    issuance.order_carnets(session, programme, carnets, actor=Actor(None, aptic))
                session.rollback()
                return
            order = issuance.order_carnets(session, programme, carnets, actor=Actor(None, aptic))
            if paid_at_once:
                issuance.record_payment_reference(session, order, f"MANDAT-{order.id}",
                                                  actor=Actor(None, mgp))
                issuance.activate_order(session, order, actor=Actor(None, aptic))
            self.commit()
            assert order.pass_count == carnets * programme.pass_per_carnet
            assert ledger.issued_total(session, self.pid) == issued + order.pass_count

        @precondition(lambda self: self.orders(paid=False))
        @rule(data=st.data())
        def record_payment(self, data):
            order = session.get(PassOrder, data.draw(st.sampled_from(self.orders(paid=False))))
            issuance.record_payment_reference(session, order, f"MANDAT-{order.id}",
                                              actor=Actor(None, mgp))
            self.commit()

        @precondition(lambda self: self.orders())
        @rule(data=st.data())
        def activate(self, data):
            order = session.get(PassOrder, data.draw(st.sampled_from(self.orders())))
            before = self.positions()
            # An order activates whole: refused once one of its pass has left "émis"
            # (annulled before activation).
            not_emis = session.execute(sa.select(sa.func.count()).select_from(Pass).where(
                Pass.carnet_id.in_(sa.select(Carnet.id).where(Carnet.order_id == order.id)),
                Pass.state != S.EMIS)).scalar()
            if order.payment_reference is None or not_emis:
                with pytest.raises(Conflict, match="numéro de mandat" if order.payment_reference
                                   is None else "activation impossible"):
                    issuance.activate_order(session, order, actor=Actor(None, aptic))
                session.rollback()
                assert self.positions() == before
                return
            count = issuance.activate_order(session, order, actor=Actor(None, aptic))
            self.commit()
            assert count == order.pass_count
            after = self.positions()
            changed = {pid for pid in before if before[pid] != after[pid]}
            assert len(changed) == count
            assert {after[pid] for pid in changed} == {(S.ACTIVE, mgp)}

        def movable(self) -> list[N]:
            """The natures that some pass of the programme may take now."""
            states = self.memoized("states", lambda: set(session.execute(
                sa.select(Pass.state).where(Pass.programme_id == self.pid).distinct()).scalars()))
            return [nature for nature in MOVES if states & custody.TRANSITIONS[nature][0]]

        @precondition(lambda self: self.movable())
        @rule(data=st.data())
        def move(self, data):
            programme = self.programme()
            natures = [n for n in self.movable() for _ in range(3 if n in FORWARD else 1)]
            nature = data.draw(st.sampled_from(natures), label="nature")
            allowed, to_state = custody.TRANSITIONS[nature]
            before = self.positions()
            eligible = [pid for pid, (state, _holder) in before.items() if state in allowed]
            holders = sorted({before[pid][1] for pid in eligible}, key=lambda h: (h is None, h))
            holder = data.draw(st.sampled_from(holders), label="holder")
            group = [pid for pid in eligible if before[pid][1] == holder]
            chosen = sorted(data.draw(st.lists(st.sampled_from(group), min_size=1, max_size=12,
                                               unique=True), label="pass"))
            to_holder = self.target(nature, holder, data)
            moved = custody.move(session, programme, nature=nature,
                                 criteria=[Pass.id.in_(chosen)], to_holder_id=to_holder,
                                 actor=Actor(None, holder), expected_holder_id=holder,
                                 expected_count=len(chosen))
            self.commit()
            assert moved == len(chosen)
            expected = dict(before)
            expected.update({pid: (to_state, to_holder) for pid in chosen})
            assert self.positions() == expected

        @rule(nature=st.sampled_from(MOVES), data=st.data())
        def refused_move(self, nature, data):
            """Some selected pass may not move (state, or holder): Conflict, nothing moves."""
            programme = self.programme()
            allowed, _to_state = custody.TRANSITIONS[nature]
            before = self.positions()
            eligible = [pid for pid, (state, _holder) in before.items() if state in allowed]
            ineligible = [pid for pid, (state, _holder) in before.items() if state not in allowed]
            entries = session.execute(sa.select(sa.func.count()).select_from(LedgerEntry)
                                      .where(LedgerEntry.programme_id == self.pid)).scalar()
            expected_holder = ...
            reasons = (["state"] if ineligible else []) + (["holder"] if eligible else [])
            reason = data.draw(st.sampled_from(reasons), label="reason") if reasons else None
            if reason == "state":               # one pass (at least) in the wrong state
                chosen = [data.draw(st.sampled_from(ineligible), label="ineligible pass")]
                chosen += data.draw(st.lists(st.sampled_from(eligible), max_size=5, unique=True),
                                    label="eligible pass") if eligible else []
                message = "impossible"
            elif reason == "holder":            # right state, someone else's pass
                chosen = [data.draw(st.sampled_from(eligible), label="pass")]
                expected_holder = next(t for t in (mgp, aptic, *communes)
                                       if t != before[chosen[0]][1])
                message = "n'est pas détenu"
            else:                               # no pass at all yet
                chosen, message = [], "Aucun pass"
            with pytest.raises(Conflict, match=message):
                custody.move(session, programme, nature=nature, criteria=[Pass.id.in_(chosen)],
                             to_holder_id=mgp, actor=Actor(None, mgp),
                             expected_holder_id=expected_holder)
            session.rollback()
            assert self.positions() == before
            assert session.execute(sa.select(sa.func.count()).select_from(LedgerEntry).where(
                LedgerEntry.programme_id == self.pid)).scalar() == entries

        # ------------------------------------------------------------ invariants

        @invariant()
        def stock_equation(self):
            issued = ledger.issued_total(session, self.pid)
            balances = ledger.balances(session, self.pid)
            counts = custody.state_counts(session, self.pid)
            rows = session.execute(sa.select(sa.func.count()).select_from(Pass)
                                   .where(Pass.programme_id == self.pid)).scalar()
            # (a) issued = sum of the balances = pass rows
            assert issued == sum(balances.values()) == rows
            # (b) the ledger and the pass table agree position by position
            for position in set(balances) | set(counts):
                assert balances.get(position, 0) == counts.get(position, 0), position
            assert all(n > 0 for n in balances.values())
            # (c) in euros
            emitted, euro_balances = euros(session, self.pid)
            assert emitted == issued * self.face_value
            assert euro_balances == {position: n * self.face_value
                                     for position, n in balances.items()}

        def teardown(self):
            session.rollback()
            if hasattr(self, "pid"):
                # (d) the HMAC chain of the example's programme is intact
                report = ledger.verify(session, self.pid)
                assert report.ok, report.problems
                session.rollback()

    return StockEquation


def test_stock_equation_under_random_operations(app):
    from portal.extensions import db
    with app.app_context():
        machine = stock_machine(db.session)
        run_state_machine_as_test(machine, settings=settings(
            max_examples=20, stateful_step_count=20, deadline=None, database=None))
        # Every example's programme, and the demo programmes, still verify together.
        assert ledger.verify(db.session).ok
