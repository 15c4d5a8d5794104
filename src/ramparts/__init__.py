"""Ramparts: a zero-trust security platform for fintech microservices.

The internal network is not safe. Every call into the system passes one
gateway, every call between services is mutually authenticated and authorised
by cryptographic identity, no service holds long-lived credentials, and every
security decision leaves a masked, correlated, tamper-evident trail.
"""

__version__ = "0.1.0"
