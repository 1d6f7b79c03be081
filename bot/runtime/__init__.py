"""The runtime: one inbound event -> one database transaction -> outbox rows to send.

- types: what channels and the runtime pass each other (Inbound, Clock, utcnow, reply_payload)
- facade: Runtime, the entry point (handle) and the caches turns share (catalog, agencies)
- turn: one turn inside the resident's transaction: the engine loop, effects, calls, replies
- identity: delivery de-duplication, the resident's contact row, language and consent
- surveys: survey answers, their reminder and the case of a very low survey
- complaints: filing a complaint and answering follow-up buttons
- relay: messages relayed to staff handling a case, asking for a person, staff invites
- status: the resident's tickets and a ticket's status
- erasure: the resident's data, its erasure and a declined consent (bot.privacy)
"""
