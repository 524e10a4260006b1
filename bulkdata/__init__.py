"""Records in and out in bulk: CSV, XLSX and JSON imports (all or nothing) and streaming exports."""
