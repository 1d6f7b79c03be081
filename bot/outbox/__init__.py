"""Everything that leaves the bot: outbox rows, the dispatcher, rate limits, follow-ups.

- store: bookkeeping shared by every sender (payload schema, row status, failure policy)
- dispatcher: the tick loop that claims due rows, sends them and records the outcomes
- recovery: rows left claimed by a dead process, and the operator's report and requeue
- ratelimit: per-channel and per-chat send slots (one process's budget)
- budget: the same budget shared by several processes (PostgreSQL or Redis)
- followups: what the bot sends by itself (check-ins, status changes, survey reminders)
"""
