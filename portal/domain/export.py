"""Reversibility: every pass of a programme with its state and full movement
history, as CSV or JSON, streamed (the real issuer's liquidation in 2024 left
opérateurs unpaid and without data).

Entries cover contiguous runs of pass ids, so the history of every pass is
rebuilt in one sweep: pass in id order, entries sorted by their first id,
a set of "open" entries whose run still covers the current pass.
"""
from __future__ import annotations

import heapq
import io
import json
from typing import Callable, Iterator, TextIO

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import spreadsheet
from portal.models import Carnet, LedgerEntry, Pass, Programme, Tenant

CSV_HEADER = ["serie", "carnet", "rang", "etat", "detenteur", "mouvement_no", "date_utc",
              "nature", "etat_avant", "detenteur_avant", "etat_apres", "detenteur_apres",
              "reference", "motif"]


Progress = Callable[[int], None]


def _history(session: Session, programme: Programme, progress: Progress | None = None,
             every: int = 500) -> Iterator[tuple[dict, list]]:
    """Each pass (dict) with its movements, in id order; ``progress(n)`` is
    called every ``every`` pass with the number of pass done."""
    names: dict[int | None, str] = dict(
        session.execute(sa.select(Tenant.id, Tenant.name)).tuples().all())
    entries = session.execute(
        sa.select(LedgerEntry).where(LedgerEntry.programme_id == programme.id)
        .order_by(LedgerEntry.pass_first_id, LedgerEntry.id)
        .execution_options(yield_per=5000)).scalars()
    pending = iter(entries)
    upcoming = next(pending, None)
    open_entries: list[tuple[int, int, LedgerEntry]] = []   # heap by last id
    rows = session.execute(
        sa.select(Pass.id, Pass.serial, Carnet.number, Pass.index_in_carnet, Pass.state,
                  Pass.holder_id).join(Carnet, Carnet.id == Pass.carnet_id)
        .where(Pass.programme_id == programme.id).order_by(Pass.id)
        .execution_options(yield_per=5000))
    for done, (pid, serial, carnet, index, state, holder) in enumerate(rows, 1):
        while upcoming is not None and upcoming.pass_first_id <= pid:
            heapq.heappush(open_entries, (upcoming.pass_last_id, upcoming.id, upcoming))
            upcoming = next(pending, None)
        while open_entries and open_entries[0][0] < pid:
            heapq.heappop(open_entries)
        moves = sorted((e for _, _, e in open_entries), key=lambda e: e.id)
        yield ({"serial": serial, "carnet": carnet, "index": index, "state": state.value,
                "holder": names.get(holder, "")},
               [{"seq": e.id, "date": e.created_at.isoformat(), "nature": e.nature.value,
                 "from_state": e.from_state.value if e.from_state else "",
                 "from_holder": names.get(e.from_holder_id, ""),
                 "to_state": e.to_state.value, "to_holder": names.get(e.to_holder_id, ""),
                 "reference": f"{e.ref_type}:{e.ref_id}" if e.ref_type else "",
                 "reason": e.reason} for e in moves])
        if progress is not None and done % every == 0:
            progress(done)


class _Line:
    """A file-like that keeps the last line csv.writer wrote."""
    value = ""

    def write(self, text: str) -> int:
        self.value = text
        return len(text)


def iter_csv(session: Session, programme: Programme, progress: Progress | None = None,
             every: int = 500) -> Iterator[str]:
    """One line per (pass, movement); ``;`` separator and BOM for French Excel."""
    line = _Line()
    writer = spreadsheet.csv_writer(line)
    writer.writerow(CSV_HEADER)
    yield "\ufeff" + line.value
    for p, moves in _history(session, programme, progress, every):
        for m in moves:
            writer.writerow([p["serial"], p["carnet"], p["index"], p["state"], p["holder"],
                             m["seq"], m["date"], m["nature"], m["from_state"], m["from_holder"],
                             m["to_state"], m["to_holder"], m["reference"], m["reason"]])
            yield line.value


def iter_json(session: Session, programme: Programme, progress: Progress | None = None,
              every: int = 500) -> Iterator[str]:
    """A JSON document, pass by pass."""
    head = {"programme": programme.name, "prefixe": programme.prefix,
            "valeur_faciale_centimes": programme.face_value_cents,
            "fin_validite": programme.valid_until.isoformat()}
    yield json.dumps(head, ensure_ascii=False)[:-1] + ', "pass": [\n'
    first = True
    for p, moves in _history(session, programme, progress, every):
        yield ("" if first else ",\n") + json.dumps({**p, "mouvements": moves},
                                                    ensure_ascii=False)
        first = False
    yield "\n]}\n"


def chunked(lines: Iterator[str], size: int = 65536) -> Iterator[str]:
    """Group small strings into chunks of about ``size`` characters."""
    buffer, length = [], 0
    for text in lines:
        buffer.append(text)
        length += len(text)
        if length >= size:
            yield "".join(buffer)
            buffer, length = [], 0
    if buffer:
        yield "".join(buffer)


def write_export(session: Session, programme: Programme, fmt: str, out: TextIO, *,
                 progress: Progress | None = None, progress_every: int = 500) -> None:
    lines = (iter_csv if fmt == "csv" else iter_json)(session, programme, progress,
                                                       progress_every)
    for chunk in chunked(lines):
        out.write(chunk)


def export_to_string(session: Session, programme: Programme, fmt: str) -> str:
    buffer = io.StringIO()
    write_export(session, programme, fmt, buffer)
    return buffer.getvalue()
