"""Durable bulk revocation jobs: every item's outcome kept in a store (SQLite or Redis),
resumable after any crash, workable by many processes at once."""
