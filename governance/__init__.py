"""The governance domain: pure rules of board sign-off (standard library and ``transitions`` only).

No database, network, file or clock access happens here: every function that needs
the time takes it as an argument, so the same code serves live commands and replay.
"""
