"""The operator's console: /admin/v1 and `modelux admin`."""
