"""The browser client: static ES modules and CSS served at `/` (docs/web.md)."""
