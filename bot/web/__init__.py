"""The aiohttp server shared by webhooks, health checks and (later) pages."""
