"""The pure conversation engine and the flow definitions.

Nothing in this package does I/O, reads the clock or draws random numbers: the runtime
passes everything in (state, event, context with ``now``) and applies the effects returned.
"""
