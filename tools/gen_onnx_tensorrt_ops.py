"""Regenerate export/data/onnx_tensorrt_ops.json from onnx-tensorrt's docs/operators.md.

    git -C onnx-tensorrt show 96e7811:docs/operators.md > operators.md
    python tools/gen_onnx_tensorrt_ops.py operators.md --source "onnx/onnx-tensorrt docs/operators.md @ 96e7811 (10.1-GA)"

The table is what tests/test_tensorrt_readiness.py checks every TensorRT-bound graph against.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "export" / "data" / "onnx_tensorrt_ops.json"


def parse(text: str) -> dict:
    header = re.search(r"TensorRT\s+([0-9.]+)\s+supports operators in the inclusive range of opset\s+(\d+)\s+to opset\s+(\d+)", text)
    if not header:
        raise SystemExit("operators.md has no 'TensorRT X supports operators in the inclusive range of opset A to opset B' line")
    operators = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or cells[1] not in ("Y", "N") or not re.fullmatch(r"[A-Za-z0-9]+", cells[0]):
            continue
        types = [t.strip() for t in cells[2].split(",") if t.strip()] if len(cells) > 2 and cells[1] == "Y" else []
        types = ["INT64" if t == "INF64" else t for t in types]  # a typo in the upstream table (ConstantOfShape)
        operators[cells[0]] = {"supported": cells[1] == "Y", "types": types, "restrictions": cells[3] if len(cells) > 3 else ""}
    return {"tensorrt": header.group(1), "opset_min": int(header.group(2)), "opset_max": int(header.group(3)), "operators": operators}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("operators_md")
    parser.add_argument("--source", required=True, help="where operators.md came from (repository, path, commit)")
    parser.add_argument("--note", default="", help="anything else a reader of the table should know")
    args = parser.parse_args()
    table = parse(Path(args.operators_md).read_text(encoding="utf-8"))
    table = {"source": args.source, "note": args.note, **table}
    OUT.write_text(json.dumps(table, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"{len(table['operators'])} operators (TensorRT {table['tensorrt']}, opset {table['opset_min']}-{table['opset_max']}) → {OUT}")


if __name__ == "__main__":
    main()
