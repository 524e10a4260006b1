"""The plain search loop the registry check is measured against: one CKYC search per PAN, with requests on
one Session, one after another.

    python bench/plain_search.py PANS_FILE SEARCH_URL     (the bearer token in $BENCH_KWIKID_TOKEN)

PANS_FILE holds one PAN a line; it is read before the clock starts. Prints one JSON line: seconds,
searches, found. Nothing here touches Django or the database: a script with no bookkeeping at all.
"""

from __future__ import annotations

import json
import os
import sys
import time

import requests


def main() -> int:
    path, url = sys.argv[1], sys.argv[2]
    with open(path, encoding="ascii") as f:
        pans = [line.strip() for line in f if line.strip()]
    headers = {
        "Authorization": f"Bearer {os.environ['BENCH_KWIKID_TOKEN']}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    session = requests.Session()
    found = 0
    started = time.perf_counter()
    for pan in pans:
        body = json.dumps({"id_type": "C", "id_no": pan}, separators=(",", ":")).encode()
        response = session.post(url, data=body, headers=headers, timeout=(5, 60))
        if response.status_code != 200:
            print(f"HTTP {response.status_code}: {response.text[:300]}", file=sys.stderr)
            return 1
        found += bool(response.json().get("CKYC_NO"))
    seconds = time.perf_counter() - started
    session.close()
    print(json.dumps({"seconds": seconds, "searches": len(pans), "found": found}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
