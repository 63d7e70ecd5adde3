"""PyPI sdists, git checkouts and source trees built into wheels (PEP 517, isolated)."""
