"""Execute a chapter's code cells in one namespace, without Jupyter (for machines that have no
kernel installed, e.g. the GPU check): `python benchmarks/run_chapter.py book/02_dynamics.ipynb`.

Cells run in order; IPython magics and shell lines (`!pip ...`, `%matplotlib`) are skipped;
figures go to the non-interactive Agg backend. Exit status 1 on the first failing cell, naming it.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path


def code_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = []
    for cell in nb["cells"]:
        if cell.get("cell_type") != "code":
            continue
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        lines = [ln for ln in src.splitlines() if not ln.lstrip().startswith(("!", "%"))]
        cells.append("\n".join(lines))
    return cells


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("MPLBACKEND", "Agg")
    path = Path(argv[0])
    ns = {"__name__": "__main__"}
    t0 = time.perf_counter()
    for i, src in enumerate(code_cells(path)):
        try:
            exec(compile(src, f"{path.name}[cell {i}]", "exec"), ns)
        except Exception:
            traceback.print_exc()
            print(f"FAILED {path} at code cell {i}")
            return 1
    print(f"OK {path} ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
