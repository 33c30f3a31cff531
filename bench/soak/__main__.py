"""`uv run python -m bench.soak --duration 30m`: run the campaign, print the verdict.

Exits 1 when a clip was lost, a resource grew, a secret leaked or anything was left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
import tempfile
from pathlib import Path

from bench.soak.campaign import CampaignSettings, run_campaign
from bench.soak.report import render

_UNITS = {"s": 1, "m": 60, "h": 3600}


def duration(text: str) -> float:
    """'90s', '3m', '1h' or plain seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90s, 3m, 1h)")
    return float(match[1]) * _UNITS[match[2] or "s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=duration, default=duration("30m"))
    parser.add_argument("--rtsp-cameras", type=int, default=1)
    parser.add_argument("--clip-every", type=float, default=5.0, help="seconds between clips")
    parser.add_argument("--work-dir", type=Path, default=None, help="kept afterwards when given")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s soak %(message)s")
    for noisy in ("httpx", "httpx2", "uvicorn", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="homesec-soak-") as tmp:
        settings = CampaignSettings(
            duration_s=args.duration,
            work_dir=args.work_dir or Path(tmp),
            rtsp_cameras=args.rtsp_cameras,
            clip_every_s=args.clip_every,
        )
        result = asyncio.run(run_campaign(settings))
    print(render(result))
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
