"""The application: definitions, the event store, use cases, configuration and the CLI."""
