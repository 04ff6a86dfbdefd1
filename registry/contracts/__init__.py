"""Standard licence contracts: rendering, signing, storage and verification (issue 4)."""
