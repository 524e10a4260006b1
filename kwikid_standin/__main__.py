"""Run the KwikID stand-in: python -m kwikid_standin --host 127.0.0.1 --port 8765."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from types import FrameType

from kwikid_standin.server import DEFAULT_TOKEN, SEARCH_PATH, UPLOAD_PATH, RecordCheck, StandIn


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kwikid_standin", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8765, help="port to bind; 0 picks a free one (default 8765)"
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("KWIKID_STANDIN_TOKEN") or DEFAULT_TOKEN,
        help="bearer token to accept (default: $KWIKID_STANDIN_TOKEN, else demo-token)",
    )
    parser.add_argument("--latency-ms", type=float, default=0, help="extra latency per upload, in ms")
    parser.add_argument(
        "--register-after-seconds",
        type=float,
        default=0,
        help="seconds after an upload's acceptance until its PANs are found by the search (default 0)",
    )
    parser.add_argument(
        "--validate-records",
        metavar="MODULE:FUNCTION",
        help="also check each upload's records with this function (records -> errors by field path), "
        "e.g. the benchmark's bench.standin_rules:portal_rules; off by default",
    )
    parser.add_argument(
        "--access-log", action="store_true", help="log request lines and statuses (never bodies) to stderr"
    )
    return parser.parse_args(argv)


def _record_check(spec: str | None) -> RecordCheck | None:
    """The function named MODULE:FUNCTION, imported (None without one)."""
    if not spec:
        return None
    module, _, name = spec.partition(":")
    if not module or not name:
        raise SystemExit(f"--validate-records needs MODULE:FUNCTION, not {spec!r}")
    check: RecordCheck = getattr(importlib.import_module(module), name)
    return check


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted (Ctrl-C or SIGTERM)."""
    args = _parse_args(argv)
    standin = StandIn(
        host=args.host,
        port=args.port,
        token=args.token,
        latency_ms=args.latency_ms,
        access_log=args.access_log,
        register_after_seconds=args.register_after_seconds,
        record_check=_record_check(args.validate_records),
    )
    standin.start()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # The token is deliberately not printed: staging may run with a real-looking one.
    print(f"KwikID stand-in listening on {standin.url} (POST {UPLOAD_PATH}, POST {SEARCH_PATH})", flush=True)
    try:
        standin.serve_until_stopped()
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
