"""One table object for every dashboard panel: rendered as HTML (template
``tenants/_table.html``), CSV (``;`` + UTF-8 BOM for French Excel,
streamed line by line) and XLSX (openpyxl ``write_only``).

A panel builds a ``Table`` once; the page, the CSV and the XLSX all come
from it, so an export always says what the screen says.
"""
from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from portal.domain import spreadsheet
from portal.formatting import format_count, format_eur, pct_text


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "text"        # text | int | pct | date | eur (value in cents)

    def html(self, value) -> str:
        if value is None:
            return "—"
        if self.kind == "int":
            return format_count(value)
        if self.kind == "pct":
            return pct_text(value) + "\u00a0%"
        if self.kind == "eur":
            return format_eur(value)
        if self.kind == "date":
            return value.strftime("%d/%m/%Y") if isinstance(value, dt.date) else str(value)
        return str(value)

    def csv(self, value) -> str:
        if value is None:
            return ""
        if self.kind == "pct":
            return pct_text(value)
        if self.kind == "eur":                 # euros with a decimal comma, for French Excel
            sign = "-" if value < 0 else ""
            return f"{sign}{abs(int(value)) // 100},{abs(int(value)) % 100:02d}"
        if self.kind == "date" and isinstance(value, dt.date):
            return value.strftime("%d/%m/%Y")
        return str(value)


@dataclass
class Table:
    slug: str                 # file name of the exports
    title: str
    columns: list[Column]
    rows: Iterable[dict[str, Any]] = field(default_factory=list)
    caption: str = ""
    footer: dict[str, Any] | None = None   # e.g. the "Total" line
    # Optional chart of the panel: ("bar" | "line", label column, value column);
    # drawn by portal.web.dashboard_tables.chart_of, with the table as alternative.
    chart: tuple[str, str, str] | None = None

    def all_rows(self) -> list[dict[str, Any]]:
        rows = list(self.rows)
        return rows + ([self.footer] if self.footer else [])

    def html_rows(self) -> list[list[str]]:
        return [[c.html(row.get(c.key)) for c in self.columns] for row in self.rows]

    def html_rows_folded(self, min_run: int = 2) -> list[dict[str, Any]]:
        """The rows as shown folded under a time-series chart: a run of at least
        ``min_run`` rows whose figures are all zero or empty becomes one row
        ``{"empty": True, "label": "02/11 à 14/11"}`` (« aucune donnée »), so that a
        month of quiet days is one line, not thirty. Other rows are
        ``{"empty": False, "cells": [...]}``. The exports keep every row."""
        figures = [c for c in self.columns if c.kind in ("int", "pct", "eur")]
        first = self.columns[0]
        out: list[dict[str, Any]] = []
        run: list[dict[str, Any]] = []

        def flush() -> None:
            if len(run) >= min_run:
                out.append({"empty": True, "label": f"{first.html(run[0].get(first.key))} à "
                                                    f"{first.html(run[-1].get(first.key))}"})
            else:
                out.extend({"empty": False, "cells": [c.html(r.get(c.key)) for c in self.columns]}
                           for r in run)
            run.clear()
        for row in self.rows:
            if figures and not any(row.get(c.key) for c in figures):
                run.append(row)
                continue
            flush()
            out.append({"empty": False, "cells": [c.html(row.get(c.key)) for c in self.columns]})
        flush()
        return out

    def html_footer(self) -> list[str] | None:
        return [c.html(self.footer.get(c.key)) for c in self.columns] if self.footer else None


def iter_csv(table: Table) -> Iterator[str]:
    """CSV lines (first one starts with the BOM); rows are consumed lazily."""
    out = io.StringIO()
    writer = spreadsheet.csv_writer(out)

    def flush() -> str:
        text = out.getvalue()
        out.seek(0)
        out.truncate()
        return text
    writer.writerow([c.label for c in table.columns])
    yield "\ufeff" + flush()
    for row in table.rows:
        writer.writerow([c.csv(row.get(c.key)) for c in table.columns])
        yield flush()
    if table.footer:
        writer.writerow([c.csv(table.footer.get(c.key)) for c in table.columns])
        yield flush()


def to_csv(table: Table) -> str:
    return "".join(iter_csv(table))


def to_xlsx(table: Table) -> bytes:
    workbook = spreadsheet.XlsxBook()
    sheet = workbook.sheet(table.title[:31] or "Tableau")
    sheet.append([c.label for c in table.columns])
    for row in table.all_rows():
        sheet.append([_xlsx_value(c, row.get(c.key)) for c in table.columns])
    return workbook.to_bytes()


def _xlsx_value(column: Column, value):
    if value is None:
        return None
    if column.kind == "pct":
        return round(float(value), 1)
    if column.kind == "eur":
        return int(value) / 100
    return value
