"""The dashboard: server-rendered pages over the same services as the management API.

Forms work without JavaScript; `static/app.js` only adds copy buttons and
the post-Checkout poll. Pages never run SQL: they call the domain services
with a `Principal` whose source is "dashboard".
"""
