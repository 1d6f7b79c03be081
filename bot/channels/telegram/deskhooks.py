"""What the web desk needs from Telegram: send rows now, refresh a case card in its topic, and
fetch a resident's photo by its file id (the web layer sits below the channels, so these are
handed to ``bot.web.desk.routes.add_desk_routes`` as :class:`bot.web.desk.base.DeskHooks`).
"""

from __future__ import annotations

import io
import logging
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.render import CHANNEL, MAX_TEXT
from bot.channels.telegram.staffroom import case_keyboard
from bot.web.desk.base import DeskHooks

log = logging.getLogger(__name__)
MAX_PHOTO = 10 * 1024 * 1024


def telegram_desk_hooks(channel: TelegramChannel) -> DeskHooks:
    bot: Bot = channel.bot

    async def edit_card(chat_id: str, message_id: str, card: dict[str, Any]) -> None:
        try:
            await bot.edit_message_text(text=card["text"][:MAX_TEXT], chat_id=chat_id,
                                        message_id=int(message_id),
                                        reply_markup=case_keyboard(card["choices"]))
        except TelegramAPIError as exc:
            log.info("could not refresh the case card: %s", exc)

    async def fetch_media(channel_name: str, media: dict[str, Any]) -> tuple[bytes, str] | None:
        if channel_name != CHANNEL or not media.get("file_id"):
            return None
        try:
            file = await bot.get_file(str(media["file_id"]))
            if file.file_path is None or (file.file_size or 0) > MAX_PHOTO:
                return None
            buf = io.BytesIO()
            await bot.download_file(file.file_path, buf)
        except TelegramAPIError as exc:
            log.info("could not fetch a photo for the desk: %s", exc)
            return None
        return buf.getvalue(), "image/jpeg"

    return DeskHooks(deliver=channel.deliver, edit_card=edit_card, fetch_media=fetch_media)
