"""What every layer stands on, importing nothing of the harness: ``errors`` (bad input as one
line and exit status 2), ``store`` (stable hashes, checksummed tensor files, atomic writes
and file locks) and ``resources`` (peak memory and operation counts)."""
