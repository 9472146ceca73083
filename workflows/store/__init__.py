"""The event store: the port (``base``) and its adapters, named by technology."""
