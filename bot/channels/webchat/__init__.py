"""The web chat: the same flows as Telegram and WhatsApp, in any browser, behind a QR code or a link.

- guard: the anonymous cookie contact, CSRF tokens and rate limits
- photos: uploaded images checked, re-encoded without metadata, saved with the complaint photos
- thread: the conversation as stored (outbox rows of channel "web"), and the web "sender"
- routes: the pages and form posts under /chat
- serve: a process with only the web chat (no Telegram, no WhatsApp)
"""
