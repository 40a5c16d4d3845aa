"""cart-recovery: abandoned-cart recovery from Kafka events to email, SMS and callback offers."""

__version__ = "0.1.0"
