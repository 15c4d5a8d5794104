"""Notifications: customer webhooks, delivered only through the egress guard."""
