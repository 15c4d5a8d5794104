"""Accounts: customers (BVN and NIN encrypted at rest, shown masked) and NUBAN accounts."""
