"""The run state machine's tasks and the functions that keep runs honest around it."""
