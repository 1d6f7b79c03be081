"""WhatsApp channel (Cloud API): signed webhooks in, outbox payloads out.

- ids: the channel name and the identifiers of residents, choices and deliveries
- inbound: the webhook signature check and the parsing of webhook bodies
- render: outbox payloads as Cloud API messages (buttons, lists, numbered text, templates)
- graph: the Graph API client and its error codes mapped onto the outbox's rules
- sender: the outbox sender, which keeps the 24-hour window (templates or waiting)
- store: stored webhook bodies, identities, changed numbers, delivery statuses
- channel: WhatsAppChannel (webhook routes and processing, replies sent after commit)
- serve: one process serving WhatsApp, with Telegram beside it when configured
"""
