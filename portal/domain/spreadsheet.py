"""The one export helper behind every CSV and XLSX the portal writes.

Spreadsheet formula injection (OWASP « CSV Injection »): a text cell that
starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as
a formula by Excel and LibreOffice, and openpyxl stores any string starting
with ``=`` as a live formula. Text from users (an opérateur's service name,
a structure's name, a correction's motif) reaches #APTIC's and the
Métropole's exports, so:

* CSV: such a cell is prefixed with an apostrophe (OWASP's recommendation),
  unless it is a plain number (``-10,00``), which spreadsheets read as a
  number and never as a formula;
* XLSX: every string is written as a text cell (``data_type = "s"``), never
  a formula, so it shows exactly as typed.

Every CSV is ``;``-separated with a UTF-8 BOM for French Excel.
"""
from __future__ import annotations

import csv
import io
import re
from typing import Any, Iterable

RISKY_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")
BOM = "\ufeff"


def neutralise(value: Any) -> Any:
    """A CSV cell that a spreadsheet cannot run as a formula."""
    if isinstance(value, str) and value.startswith(RISKY_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


class CsvWriter:
    """``csv.writer`` (``;``, CRLF) whose rows go through :func:`neutralise`."""

    def __init__(self, out):
        self._writer = csv.writer(out, delimiter=";", lineterminator="\r\n")

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([neutralise(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(out) -> CsvWriter:
    return CsvWriter(out)


def csv_text(rows: Iterable[Iterable[Any]]) -> str:
    """A whole CSV document, BOM first."""
    out = io.StringIO()
    out.write(BOM)
    CsvWriter(out).writerows(rows)
    return out.getvalue()


class XlsxBook:
    """An openpyxl write-only workbook whose strings are always text cells."""

    def __init__(self):
        from openpyxl import Workbook
        self._book = Workbook(write_only=True)

    def sheet(self, title: str) -> "XlsxSheet":
        return XlsxSheet(self._book.create_sheet(title[:31] or "Feuille"))

    def to_bytes(self) -> bytes:
        out = io.BytesIO()
        self._book.save(out)
        return out.getvalue()


class XlsxSheet:
    def __init__(self, sheet):
        self._sheet = sheet

    def append(self, row: Iterable[Any]) -> None:
        from openpyxl.cell import WriteOnlyCell
        cells = []
        for value in row:
            if isinstance(value, str):
                cell = WriteOnlyCell(self._sheet, value)
                cell.data_type = "s"        # text, never a formula
                cells.append(cell)
            else:
                cells.append(value)
        self._sheet.append(cells)
