"""The reference bank: five services built on Ramparts.

accounts (customers and NUBAN accounts), ledger (a double-entry journal),
payments (transfers), notifications (customer webhooks, the classic SSRF
sink) and statements (PDF statements from ledger data). Each owns its
database and its migrations; none reaches another's data except by calling
it over mTLS, as the topology allows.
"""
