"""The institution, its branches, its users and their roles, the audit event, and who may see what."""
