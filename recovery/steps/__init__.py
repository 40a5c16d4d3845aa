"""Steps: durable timers, the decisions before and after a due step's send, firing it, guards and offers."""
