"""The plain upload loop the portal is measured against: POST prepared bodies with requests on one Session.

    python bench/plain_upload.py BODIES_FILE UPLOAD_URL     (the bearer token in $BENCH_KWIKID_TOKEN)

BODIES_FILE holds the request bodies, already serialised, each preceded by its length (8 bytes, big
endian); they are read before the clock starts. Prints one JSON line: seconds, requests, bytes.
Nothing here touches Django or the database: it is what a script with no bookkeeping at all would do.
"""

from __future__ import annotations

import json
import os
import sys
import time

import requests


def read_bodies(path: str) -> list[bytes]:
    bodies = []
    with open(path, "rb") as f:
        while header := f.read(8):
            bodies.append(f.read(int.from_bytes(header, "big")))
    return bodies


def main() -> int:
    path, url = sys.argv[1], sys.argv[2]
    bodies = read_bodies(path)
    headers = {
        "Authorization": f"Bearer {os.environ['BENCH_KWIKID_TOKEN']}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    session = requests.Session()
    started = time.perf_counter()
    for body in bodies:
        response = session.post(url, data=body, headers=headers, timeout=(5, 60))
        if response.status_code != 200:
            print(f"HTTP {response.status_code}: {response.text[:300]}", file=sys.stderr)
            return 1
    seconds = time.perf_counter() - started
    session.close()
    print(json.dumps({"seconds": seconds, "requests": len(bodies), "bytes": sum(map(len, bodies))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
