"""Automation: what closes the loop without a person (triggers, the controller, ``loop apply``,
watched folders). It may use every service; no service imports it (the workspace builds it)."""
