"""Publishes a service's metrics (`cmlcm.domain.jobs.Metric`) as Powertools EMF metrics."""

from __future__ import annotations

from collections.abc import Iterable

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from cmlcm.domain.jobs import Metric


def publish(metrics: Metrics, published: Iterable[Metric], *, flush: bool = False) -> None:
    """Add each metric; with `flush`, write them now (a handler without `log_metrics`, so that a
    run that publishes none logs no empty-metrics warning)."""
    added = 0
    for metric in published:
        metrics.add_metric(name=metric.name, unit=MetricUnit(metric.unit), value=metric.value)
        added += 1
    if flush and added:
        metrics.flush_metrics()
