"""Cohort staging on OMOP CDM databases (DuckDB, PostgreSQL, Spark) through one Ibis expression."""
