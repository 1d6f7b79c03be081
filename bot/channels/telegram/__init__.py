"""Telegram channel on aiogram 3: updates in, outbox payloads out, long polling or webhook.

- render.py: the channel's limits, inline keyboards and their callback data.
- sender.py: the Bot object and :class:`TelegramSender` (one send, aiogram's errors classified).
- turns.py: the database side of turns (batched executor jobs, group-committed sends).
- channel.py: :class:`TelegramChannel`, the handlers and the send-after-commit path.
- staffroom.py: the staff room (case topics, case buttons, ``/kasus``, ``/balas``).
- polling.py: :class:`Poller`, long polling that confirms an update only once it is stored.
- webhook.py: Telegram's webhook route on the aiohttp server.
- run.py: :func:`serve` and ``run_telegram``, the entry point.
"""
