"""Steps: durable timers, the decision and firing of a due step, guards and offers."""
