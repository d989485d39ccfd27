"""The only writers of the mediation procedure, split by sub-domain."""
