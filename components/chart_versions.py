"""Every Helm chart the platform installs, pinned in one place.

Bump a version here (and run the tests and an offline preview); nothing else names a chart
version or repository. Entries are added by the component that installs the chart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChartRef:
    chart: str  # chart name, or a full oci:// reference
    version: str  # an exact version: never a range, never empty
    repo: str | None = None  # https chart repository; None for oci:// charts

    @property
    def is_oci(self) -> bool:
        return self.chart.startswith("oci://")


CHARTS: dict[str, ChartRef] = {}
