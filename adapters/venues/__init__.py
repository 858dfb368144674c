"""Venue adapters: the simulated venue and, later, one package per exchange."""
