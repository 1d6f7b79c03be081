"""The machine's parts: what crosses the engine's boundary and what a step works with.

They know no flow: flows/steps/ fills the registry and flows/engine.py runs it.

- types: the data types that cross the boundary (events in, effects out, the context)
- turn: the mutable working set while one event is handled (say, goto, back, call)
- registry: the step contract (Question, StepSpec), the registry and ``register``
"""
