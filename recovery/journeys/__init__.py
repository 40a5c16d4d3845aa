"""Journeys: events applied to carts, journeys started and ended, holdout assignment."""
