"""Render a statement as PDF with fpdf2 (core fonts: text is Latin-1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fpdf import FPDF


def naira(kobo: int) -> str:
    return f"NGN {kobo // 100:,}.{kobo % 100:02d}" if kobo >= 0 else "-" + naira(-kobo)


def _latin1(text: str) -> str:
    # Narrations are user input; core PDF fonts cannot show every character.
    return text.encode("latin-1", "replace").decode("latin-1")


def render_statement(
    *,
    account: str,
    customer_id: str,
    month: str,
    entries: Sequence[dict[str, Any]],
    closing_balance: int,
) -> bytes:
    pdf = FPDF()
    pdf.set_title(f"Statement {account} {month}")
    pdf.set_creator("refbank statements")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "Refbank account statement", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    for label, value in (("Account", account), ("Customer", customer_id), ("Period", month)):
        pdf.cell(0, 6, _latin1(f"{label}: {value}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    widths = (45, 75, 35, 35)
    pdf.set_font("Helvetica", "B", 10)
    for w, head in zip(widths, ("Date", "Narration", "Debit", "Credit"), strict=True):
        pdf.cell(w, 7, head, border=1)
    pdf.ln()
    pdf.set_font("Helvetica", size=9)
    for e in entries:
        debit = naira(e["amount"]) if e["direction"] == "debit" else ""
        credit = naira(e["amount"]) if e["direction"] == "credit" else ""
        row = (e["created_at"][:19], _latin1(e["narration"] or "-")[:40], debit, credit)
        for w, cell in zip(widths, row, strict=True):
            pdf.cell(w, 6, cell, border=1)
        pdf.ln()
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 7, f"Closing balance: {naira(closing_balance)}", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
