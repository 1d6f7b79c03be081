"""The pure conversation engine and the flow definitions.

Nothing in this package does I/O, reads the clock or draws random numbers: the runtime
passes everything in (state, event, context with ``now``) and applies the effects returned.
It never imports ``bot``.

- helpers/: what the flows know, with no idea of a conversation (catalog, matching, skm, ...)
- machine/: the machine's parts, knowing no flow (types, turn, registry)
"""
