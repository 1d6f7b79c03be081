"""Channel adapters: turn platform updates into :class:`bot.runtime.Inbound`, render replies."""
