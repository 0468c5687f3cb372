"""Monitoring: scheduled checks of data and captured traffic against baselines, model quality
from late labels, metric series and alarms with actions."""
