"""The plain import the portal is measured against: stream the CSV, apply the same regular expressions,
COPY the rows into a PostgreSQL table. No Django, no encryption, no duplicate checks, no audit.

    python bench/import_plain.py FILE CONNINFO

Prints one JSON line: seconds, rows, rows that failed a pattern.
"""

from __future__ import annotations

import csv
import json
import re
import sys
import time

import psycopg

# The patterns records/validation.py applies to these fields, as a plain script would copy them.
_NAME = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")
_REL_NAME = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*(?: [A-Za-z]+(?:'[A-Za-z]+)*)*")
_PIN_INDIA = re.compile(r"[1-9]\d{5}", re.ASCII)
PATTERNS = {
    "kyc_ref_no": re.compile(r"[A-Za-z0-9_/-]+"),
    "pan": re.compile(r"[A-Z]{3}P[A-Z]\d{4}[A-Z]", re.ASCII),
    "applicant_first_name": _NAME,
    "applicant_middle_name": _NAME,
    "applicant_rel_first_name": _REL_NAME,
    "applicant_rel_middle_name": _REL_NAME,
    "poa_pin_code": _PIN_INDIA,
    "current_pin_code": _PIN_INDIA,
    "mobile_isd": re.compile(r"\d{1,3}", re.ASCII),
    "mobile_number": re.compile(r"[6-9]\d{9}", re.ASCII),
    "poa_document_number": re.compile(r"[A-Z]\d{7}", re.ASCII),
    "kyc_declaration_place": _NAME,
}


def main() -> int:
    path, conninfo = sys.argv[1], sys.argv[2]
    started = time.perf_counter()
    rows = failed = 0
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS plain_import")
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader)
            columns = ", ".join(f'"{name}" text' for name in header)
            cur.execute(f"CREATE TABLE plain_import ({columns})")
            checks = [(header.index(name), pattern) for name, pattern in PATTERNS.items()]
            with cur.copy("COPY plain_import FROM STDIN") as copy:
                for row in reader:
                    rows += 1
                    if any(row[i] and not pattern.fullmatch(row[i]) for i, pattern in checks):
                        failed += 1
                    copy.write_row(row)
    print(json.dumps({"seconds": time.perf_counter() - started, "rows": rows, "failed": failed}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
