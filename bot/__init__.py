"""Klaviyo help bot: wiring, settings, database, thread context, Klaviyo client."""
