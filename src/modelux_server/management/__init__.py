"""The management API `/manage/v1`: routers of every domain, one way to answer."""
