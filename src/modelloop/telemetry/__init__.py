"""Telemetry: what serving writes and monitoring reads, so that neither imports the other.

The capture record format and its writer/reader (:mod:`.capture`), per-variant request counters
(:mod:`.metrics`), metric series (:mod:`.series`), alarms on them (:mod:`.alarms`) and late labels
(:mod:`.labels`). It sits under the services and over the domain packages (it names things with
:func:`modelloop.data.refs.check_name`).
"""
