"""Counter backends: `local` (one process) and `redis` (many processes)."""
