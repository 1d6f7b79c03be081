"""Can this group be a staff room? Asked of Telegram before ``/ruangstaf`` links anything.

A staff room gives every case its own forum topic, so the group must have Topics turned on
(``getChat``: ``is_forum``) and the bot must be an administrator allowed to manage topics
(``getChatMember``: ``can_manage_topics``). Without either, linking would half-work (cards in
the main chat, or no topics at all), so ``/ruangstaf`` refuses with what to change instead.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

log = logging.getLogger(__name__)


async def room_problem(bot: Bot, chat_id: int | str) -> str | None:
    """None when the group is ready; else the text key of the instructions to show."""
    try:
        chat = await bot.get_chat(chat_id)
        if chat.type != "supergroup" or not chat.is_forum:
            return "case.room.no_topics"
        me = await bot.get_chat_member(chat_id, bot.id)
    except TelegramAPIError as exc:
        log.warning("could not check group %s for a staff room: %s", chat_id, exc)
        return "case.room.check_failed"
    if me.status == "creator":
        return None
    if me.status != "administrator":
        return "case.room.not_admin"
    if not getattr(me, "can_manage_topics", False):
        return "case.room.no_manage_topics"
    return None
