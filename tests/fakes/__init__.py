"""Fake external services for tests: real local aiohttp servers."""
