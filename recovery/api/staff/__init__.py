"""Staff routes: the agents' desk, the marketers' studio and dashboard, their APIs."""
