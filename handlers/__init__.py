"""Slack entry points: one module per entry point, plus shared capabilities."""
