"""`trdstage serve`: trdstage as an authenticated, audited REST service (FastAPI on uvicorn).

Entry points for the parts built on it (CDS Hooks in `service/cds/`, the web app in
`service/webapp/`):

- `settings.load_settings(path) -> Settings`: TOML (`--config` or $TRDSTAGE_CONFIG);
  `settings.server` (host, port, database, max_body_mb, cors_origins, rate_limit_per_minute,
  base_url ...), `settings.oidc`, and the raw tables `settings.cds`, `settings.smart`,
  `settings.webapp` (dicts, validated by their owners); `settings.raw` is the whole TOML.
- `models.Base`: the declarative base; add tables there (a module of your own, listed in
  `migrations/env.py` MODEL_MODULES) and ship an Alembic revision in `migrations/versions/`
  (`python -m trdstage.service.migrations.revision "message"`, then review it).
  Tables: Account, ApiToken, Patient, PatientVersion, Assessment, AuditEvent.
- `db.Database(url)`: `.session()` context manager, `.engine`; `db.migrate(url)`;
  the app's is `request.app.state.db`.
- `audit.record(session, actor=, kind=, action=, outcome=, request=, patient_id=, entity=,
  query=, detail=)`: one AuditEvent in the caller's transaction (commit it with the action);
  `audit.Actor` (account, CDS client, anonymous), `audit.rest("read")`, `audit.LOGIN`;
  `audit.to_fhir(row)` renders a FHIR R4 AuditEvent (IHE BALP shape).
- `auth`: `verify_password`, `sign_in(session, name, password, request)` (audited),
  `issue_token`, dependencies `current_principal` / `current_account`, `require_role(...)`,
  and the annotated shortcuts `Clinician`, `Admin`, `DbSession`; `refuse(...)` records a
  refusal and returns the Problem to raise.
- `store`: patients and assessments as session operations, scoped to the owning account
  (`create_patient`, `update_patient`, `find_patient`, `list_patients`, `version_of`,
  `assess_patient`, `find_assessment`, `list_assessments`), body parsing (`read_body`,
  `read_input`: JSON, FHIR JSON or YAML), `bundled_policy`, `knowledge_version`.
  `fhir_out.results_bundle` is the FHIR results Bundle with its Provenance.
- `problems.Problem(status, detail, where=)`: raise it; it becomes an RFC 9457 problem
  document (or a FHIR OperationOutcome when the request speaks FHIR).
- `app.create_app(settings) -> FastAPI`: security headers, request id, body limit, CORS,
  rate limit, /healthz, /api/v1. Optional parts plug in through `app.EXTENSIONS`: a module
  `trdstage.service.cds` / `trdstage.service.webapp` with `install(app, settings)` is
  imported when present (add routers, and `app.state.csp_overrides[prefix] = csp` for pages).
- `cli.service_app` (`trdstage admin ...`) and `cli.serve` (`trdstage serve`).
"""
