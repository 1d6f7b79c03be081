"""The public pages (issue 15): the regency's and each agency's figures, no sign-in.

data: the figures of a page, from the open data computations (bot/web/opendata/figures.py).
svg: the trend chart and the QR code, as inline SVG.
routes: the aiohttp routes /, /a/<agency>[/<service>] and /tv, rendered and cached.
"""
