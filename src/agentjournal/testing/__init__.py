"""Helpers for testing against real databases, for this project's tests and its users'."""
