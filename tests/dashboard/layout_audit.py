"""What a tablet or phone user can reach on a dashboard page, measured in the real
browser: element boxes and the document's scroll width, not screenshots.

Checked on every page: no horizontal page scroll; every target (link, button,
field) inside the screen or inside a box that scrolls by itself; every target at
least 24 by 24 CSS px (WCAG 2.2 SC 2.5.8, here without its spacing exception: a
finger on a tablet misses a 10 px receipt number however far its neighbours are),
except a link inside a sentence (the SC's inline exception); no table cell with more
than 20 characters narrower than 8rem (a table squeezed into a phone broke a file
name into a column of letters, a row 300 px tall).
"""

from __future__ import annotations

from typing import Any

#: the checks in the page; returns the document's scroll width and every problem
AUDIT_JS = r"""
() => {
  const CELL_MIN = 128;  // px: 8rem, about 16 characters
  const W = window.innerWidth, problems = [];
  const name = e => (e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
    + ' "' + (e.innerText || e.value || e.getAttribute('aria-label') || e.name || '')
      .trim().slice(0, 40) + '"');
  const shown = e => {
    const s = getComputedStyle(e), r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden'
      && !e.closest('.sr-only') && !e.classList.contains('skip');
  };
  const scroller = e => {
    for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll') return p;
    }
    return null;
  };
  const inSentence = e => {
    if (e.tagName !== 'A') return false;
    const block = e.parentElement;
    const text = (block.innerText || '').replace(/\s+/g, ' ').trim();
    const own = (e.innerText || '').replace(/\s+/g, ' ').trim();
    return ['P', 'LI', 'DD', 'SMALL', 'SPAN'].includes(block.tagName)
      && text.length > own.length + 3 && !block.closest('nav, header');
  };
  const all = [...document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary')].filter(shown);
  all.forEach(e => {
    const r = e.getBoundingClientRect(), box = scroller(e);
    if (!box && (r.left < -0.5 || r.right > W + 0.5))
      problems.push(`cut off: ${name(e)} at ${Math.round(r.left)}..${Math.round(r.right)}`);
    if (box) {
      const area = box.getBoundingClientRect();
      if (area.left < -0.5 || area.right > W + 0.5)
        problems.push(`scroll box cut off around ${name(e)}`);
    }
    if ((r.width < 23.99 || r.height < 23.99) && !inSentence(e))
      problems.push(`small target: ${name(e)} ${r.width.toFixed(1)}x${r.height.toFixed(1)}`);
  });
  // a table squeezed into the screen breaks its words into a column of letters
  for (const cell of document.querySelectorAll('table td, dl dd')) {
    const w = cell.getBoundingClientRect().width;
    if (cell.innerText.trim().length > 20 && w < CELL_MIN)
      problems.push(`squeezed ${cell.tagName.toLowerCase()} (${Math.round(w)} px): `
        + cell.innerText.trim().slice(0, 50));
  }
  return {scrollWidth: document.documentElement.scrollWidth, width: W,
          targets: all.length, problems: problems};
}
"""


def audit(page: Any) -> dict[str, Any]:
    """The page's scroll width and its problems (see AUDIT_JS)."""
    found: dict[str, Any] = page.evaluate(AUDIT_JS)
    return found
