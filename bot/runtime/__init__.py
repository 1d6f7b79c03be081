"""The runtime: one inbound event -> one database transaction -> outbox rows to send.

- turn: one turn inside the resident's transaction (the engine loop and its effects)
"""
