"""`python -m pipelines.serve [serve.key=value ...]`: serve an export folder.

python -m pipelines.serve                               # export/ on the configured port
python -m pipelines.serve --export outputs/runs/<run>/export serve.port=0
python -m pipelines.serve --write-alerts conf/serve/alerts.yml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines.errors import PipelineError
from pipelines.serve.config import DEFAULT_CONFIG, load_serve_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.serve", description=__doc__)
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. serve.max_batch=32")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="serve config YAML")
    parser.add_argument("--export", help="export folder (serve.export_dir)")
    parser.add_argument("--port", type=int, help="port (serve.port; 0 picks a free one)")
    parser.add_argument(
        "--write-alerts", metavar="PATH", help="write the Prometheus alert rules and exit"
    )
    args = parser.parse_args(argv)
    overrides = list(args.overrides)
    if args.export is not None:
        overrides.append(f"serve.export_dir={args.export}")
    if args.port is not None:
        overrides.append(f"serve.port={args.port}")
    try:
        cfg = load_serve_config(args.config, overrides)
        if args.write_alerts:
            from pipelines.serve.alerts import write_alerts

            print(f"wrote {write_alerts(cfg, Path(args.write_alerts))}")
            return 0
        from pipelines.serve.runner import serve

        return serve(cfg)
    except PipelineError as err:
        print(f"error: serve: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
