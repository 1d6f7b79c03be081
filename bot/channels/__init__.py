"""Channel adapters: turn platform updates into :class:`bot.runtime.types.Inbound`, render replies."""
