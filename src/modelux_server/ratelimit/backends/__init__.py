"""Rate limiter backends: `local` (one process, the embedded default) and `redis` (many processes)."""
