"""Automation: what closes the loop without a person (triggers, the controller, ``loop apply``,
watched folders). It may use every service; no service imports it (the workspace builds it).

Triggers (:mod:`.triggers`; causes in :mod:`.causes`, actions in :mod:`.actions`) turn events,
schedule slots and files landing in watched locations into actions, each cause exactly once.
"""
