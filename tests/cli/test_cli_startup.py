"""Every opentse command starts a Python process that loads the whole CLI; a till's
`pos sell` runs one per sale. fpdf2 (with fontTools) took ~0.4 s of that start, for
PDFs most commands never write: it is loaded when a PDF is made, not before."""

from __future__ import annotations

import subprocess
import sys


def test_the_cli_starts_without_the_pdf_library() -> None:
    probe = (
        "import sys; import opentse.cli.main as m; m.build_app(); "
        "import opentse.register, opentse.register.zreport; "
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('fpdf', 'fontTools')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout
