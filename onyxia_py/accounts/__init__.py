"""Accounts: identities, sessions, API tokens and what each credential allows."""
