"""`trdstage sandbox`: a test EHR on loopback (FHIR server over synthetic patients, a signing
CDS Hooks client, pages that show the cards). `app.build_sandbox(base_url)` returns the parts;
other test servers (e.g. a SMART authorization server) mount on `Sandbox.app`."""
