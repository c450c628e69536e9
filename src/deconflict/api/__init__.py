"""The HTTP API (API.md) and the web page, one module per resource."""
