"""Errors of the application layer, each with the exit code the CLI gives it.

    WorkflowError                      root; ``exit_code`` says how the CLI ends
    ├── BadInput (2)                   usage, malformed file, unknown name
    │   ├── ConfigError                a wrong key or value in config.toml / GOVFLOW_*
    │   ├── DefinitionFileError        a definition file that does not validate
    │   ├── UnknownInstance
    │   ├── InstanceExists
    │   └── CommandKeyReused           the same --key sent with a different command
    ├── ConcurrencyConflict (3)        another writer got there first: retry
    └── StoreError (5)                 the database cannot be used (missing, locked, read-only)

Rule refusals come from the domain (``governance.errors.RuleViolation``, exit 1).
"""

from __future__ import annotations


class WorkflowError(Exception):
    """Root of the application's errors."""

    exit_code = 2


class BadInput(WorkflowError):
    """The user asked for something malformed or unknown."""

    exit_code = 2


class ConfigError(BadInput):
    """A configuration key or value is wrong."""


class DefinitionFileError(BadInput):
    """A definition file does not validate; ``problems`` lists each with its key path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        count = len(problems)
        super().__init__(f"{source}: {count} problem{'s' if count != 1 else ''}: " + "; ".join(problems))


class UnknownInstance(BadInput):
    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        super().__init__(f"unknown instance '{instance_id}'")


class InstanceExists(BadInput):
    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        super().__init__(f"instance '{instance_id}' already exists")


class CommandKeyReused(BadInput):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"command key '{key}' was already used for a different command")


class ConcurrencyConflict(WorkflowError):
    """The stream moved on between reading and appending; the command can be retried."""

    exit_code = 3

    def __init__(self, stream_id: str, expected_version: int) -> None:
        self.stream_id = stream_id
        self.expected_version = expected_version
        super().__init__(
            f"conflict: '{stream_id}' changed while this command ran "
            f"(expected version {expected_version}); nothing was recorded, retry"
        )


class StoreError(WorkflowError):
    """The database could not be used; the message says why."""

    exit_code = 5
