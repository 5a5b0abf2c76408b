"""Who is calling: management keys, project keys, dashboard sessions, operator."""
