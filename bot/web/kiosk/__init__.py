"""The kiosk page: a tablet at the counter collecting one service's SKM (bot/runtime/kiosk.py)."""
