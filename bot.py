#!/usr/bin/env python3
"""Prima entry point: ``python bot.py`` runs the bot; ``python bot.py --help`` lists commands."""

import sys

from bot.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
