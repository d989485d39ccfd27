"""The only writers of agreements: drafts (versions, comments, proposals),
signing (freeze, sign, decline, withdraw) and issuing (seal, download)."""
