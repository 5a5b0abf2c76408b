"""`/docs`: the API reference, rendered on the server from the OpenAPI document.

No script, no CDN and no inline style: it works behind a firewall and under
the dashboard's Content-Security-Policy (kit/security_headers.py).
"""
