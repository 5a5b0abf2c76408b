"""MCP: the management API as tools an assistant can call.

    operations.py  one row per tool: the management endpoint it mirrors
                   (method, path, role) and the service call behind it
    tools.py       the tools an assistant sees: names, descriptions, typed
                   arguments; answers and errors in the REST shapes
    server.py      the MCPServer built from the tools and a backend
    local.py       backend that runs the services in this process (`/mcp`)
    remote.py      backend that forwards to a server's management API
    http.py        `/mcp` on the app: management-key auth, streamable HTTP
    stdio.py       `modelux mcp`: the same tools over stdio, via remote.py

A tool answers what its endpoint answers: success is the endpoint's `data`
(lists keep `next_cursor` and `has_more`), an error is a tool error
(`isError: true`) carrying `{"status": ..., "error": {...}}`, the contract's
error body plus the HTTP status the endpoint would have sent.
"""
