"""Everything that leaves the bot: outbox rows, the dispatcher, rate limits, follow-ups."""
