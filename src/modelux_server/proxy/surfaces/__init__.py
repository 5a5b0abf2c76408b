"""The `/v1` surfaces besides chat completions: other wire formats onto the same pipeline.

    POST /v1/responses     OpenAI Responses API      responses.py
    POST /v1/completions   OpenAI legacy completions completions.py
    POST /v1/messages      Anthropic Messages API    messages.py

Each surface translates its request into an OpenAI chat body and runs the chat
completions pipeline unchanged (`pipeline.serve`): authentication, the key's rate
limit, `check_chat`, routing, credentials, admission and counting, the executor
and the request log. A request is therefore counted, limited and logged the same
whichever surface it came through. The chat answer, or the chat stream as
`endpoints.relay` sends it, is then translated back into the surface's own shape
(`chat.py` reads chat answers and chunks for all of them).
"""
