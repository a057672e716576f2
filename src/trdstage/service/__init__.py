"""The trdstage service."""
