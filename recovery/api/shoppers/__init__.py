"""Shoppers' routes: tracked links, unsubscribe, feedback, the callback slot picker."""
