"""The trdstage service: REST API, CDS Hooks and the clinician web app."""
