"""The event stream: the workspace's event log delivered to consumer groups (see
:mod:`modelloop.events.stream`)."""

from modelloop.events.stream import Consumer, Delivery, EventStream, open_stream

__all__ = ["Consumer", "Delivery", "EventStream", "open_stream"]
