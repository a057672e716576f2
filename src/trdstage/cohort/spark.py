"""A local SparkSession for `spark:` URLs and tests: one per process, loopback only, UTC, no UI.

On a cluster or Databricks, pass your own session's tables instead (docs/cohort.md)."""

from __future__ import annotations

import os
from functools import cache
from typing import Any


@cache
def spark_session(master: str | None = None) -> Any:
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("Spark needs pyspark: pip install 'trdstage[spark]'") from exc
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    master = master or os.environ.get("TRDSTAGE_SPARK_MASTER", "local[1]")
    partitions = "1" if master == "local[1]" else "8"
    builder = (SparkSession.builder.master(master)
               .appName("trdstage-cohort")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.sql.shuffle.partitions", partitions)
               .config("spark.driver.memory", "1g"))
    return builder.getOrCreate()


__all__ = ["spark_session"]
