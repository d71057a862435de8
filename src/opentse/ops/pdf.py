"""A small Markdown-subset to PDF layouter (fpdf2) for the procedure documentation:
``#``/``##``/``###`` headings, ``>`` quotes, ``-`` bullets, pipe tables and
paragraphs; ``**bold**`` and backticks are shown as plain text. DejaVu Sans is used
when installed (full Unicode); otherwise the PDF core font with Latin-1 text."""

from __future__ import annotations

import re
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_INLINE = re.compile(r"\*\*|`")


def _plain(text: str) -> str:
    return _INLINE.sub("", text).replace("\\|", "|")


class _Doc(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        regular, bold = FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSans-Bold.ttf"
        if regular.exists() and bold.exists():
            self.add_font("Body", "", str(regular))
            self.add_font("Body", "B", str(bold))
            self.family = "Body"
            self.unicode = True
        else:
            self.family = "Helvetica"
            self.unicode = False
        self.set_auto_page_break(auto=True, margin=15)
        self.set_margins(15, 15, 15)
        self.add_page()

    def text_of(self, text: str) -> str:
        text = _plain(text)
        if self.unicode:
            return text
        for quote in "„“”":  # German quotes are not Latin-1
            text = text.replace(quote, '"')
        return text.encode("latin-1", "replace").decode("latin-1")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.family, "", 7)
        self.cell(0, 5, self.text_of(f"opentse - nicht BSI-zertifiziert - Seite {self.page_no()}"),
                  align="C")  # fmt: skip


def _split_row(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [c.strip() for c in cells]


def _table(doc: _Doc, rows: list[list[str]]) -> None:
    columns = max(len(r) for r in rows)
    size = 8 if columns <= 3 else 6.5
    doc.set_font(doc.family, "", size)
    heading = FontFace(emphasis="BOLD", fill_color=(225, 225, 225))
    # width by content: long columns (details, hashes) get more room, capped
    weights = [
        min(max((len(_plain(r[i])) for r in rows if i < len(r)), default=1), 60) + 6.0
        for i in range(columns)
    ]
    # a column is at least as wide as the longest word of its (bold) heading: sized by
    # short values ("-") a heading broke inside the word ("Außerbetriebna/hme")
    doc.set_font(doc.family, "B", size)
    least = [
        max((doc.get_string_width(w) for w in doc.text_of(rows[0][i]).split()), default=0) + 3
        if i < len(rows[0]) else 0.0
        for i in range(columns)
    ]  # fmt: skip
    doc.set_font(doc.family, "", size)
    widths = [w / sum(weights) * doc.epw for w in weights]
    if sum(least) < doc.epw:
        for _ in range(columns):
            short = [i for i in range(columns) if widths[i] < least[i]]
            if not short:
                break
            for i in short:
                widths[i] = least[i]
            free = [i for i in range(columns) if i not in short and widths[i] > least[i]]
            excess = sum(widths) - doc.epw
            room = sum(widths[i] for i in free)
            for i in free:
                widths[i] -= excess * widths[i] / room
    with doc.table(
        col_widths=tuple(widths),
        first_row_as_headings=True, headings_style=heading, line_height=size * 0.5,
        text_align="LEFT", padding=0.8,
    ) as table:  # fmt: skip
        for r in rows:
            row = table.row()
            for i in range(columns):
                row.cell(doc.text_of(r[i] if i < len(r) else ""))
    doc.ln(2)


def markdown_to_pdf(markdown: str) -> bytes:
    doc = _Doc()
    width = doc.epw
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if line.startswith("|"):
            rows: list[list[str]] = []
            while i < len(lines) and lines[i].startswith("|"):
                if not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[i].strip()):
                    rows.append(_split_row(lines[i]))
                i += 1
            _table(doc, rows)
            continue
        i += 1
        if not line.strip():
            doc.ln(1.5)
            continue
        level = len(line) - len(line.lstrip("#"))
        if 1 <= level <= 3 and line[level : level + 1] == " ":
            size = {1: 15, 2: 12.5, 3: 10.5}[level]
            doc.ln(2 if level > 1 else 0)
            doc.set_font(doc.family, "B", size)
            heading = doc.text_of(line[level + 1 :])
            doc.multi_cell(width, size * 0.5, heading, align="L", new_x="LMARGIN", new_y="NEXT")
            doc.ln(1)
            continue
        doc.set_font(doc.family, "", 9)
        if line.startswith(">"):
            doc.set_x(doc.l_margin + 4)
            quote = doc.text_of(line.lstrip("> "))
            doc.multi_cell(width - 4, 4.5, quote, align="L", new_x="LMARGIN", new_y="NEXT")
        elif line.startswith("- "):
            bullet = "• " if doc.unicode else "- "
            doc.multi_cell(
                width,
                4.5,
                doc.text_of(bullet + line[2:]),
                align="L",
                new_x="LMARGIN",
                new_y="NEXT",
            )
        else:
            doc.multi_cell(width, 4.5, doc.text_of(line), align="L", new_x="LMARGIN", new_y="NEXT")
    return bytes(doc.output())
