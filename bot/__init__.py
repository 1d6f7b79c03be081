"""Prima runtime: channels, storage, scheduler and everything that does I/O.

The pure conversation engine lives in :mod:`flows`; this package feeds it events and
applies what it decides, one database transaction per inbound event.
"""

__version__ = "0.1.0"
