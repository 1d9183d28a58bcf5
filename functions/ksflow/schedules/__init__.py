"""Recurring schedules of workflow definitions: recurrence rules, the Scheduler adapter and its target."""
