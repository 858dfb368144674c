"""Fake venues on loopback, speaking real venues' wire formats."""
