"""The command line: ``python bot.py <command>``."""
