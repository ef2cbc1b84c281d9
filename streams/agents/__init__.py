"""Faust agents: thin adapters that decode, call the pure domain, and send or write."""
