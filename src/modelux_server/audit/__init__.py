"""The audit log: every change on record, hash-chained per organization, append-only."""
