"""The plan catalog and entitlements: a leaf that imports no domain package.

Every domain asks "what may this organization do?" here; nothing here asks a domain.
"""
