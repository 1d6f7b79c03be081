"""The pure conversation engine and the flow definitions.

Nothing in this package does I/O, reads the clock or draws random numbers: the runtime
passes everything in (state, event, context with ``now``) and applies the effects returned.
It never imports ``bot``.

Layers, low to high (a module imports only from its own layer or lower ones):

- helpers/: what the flows know, with no idea of a conversation (catalog, matching, skm, ...)
- machine/: the machine's parts, knowing no flow (types, turn, registry)
- steps/: the flows themselves, one module per flow; each registers its steps
- engine.py: ``step(state, event, context)``, the one entry; it imports every flow
"""
