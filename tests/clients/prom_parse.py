"""Parses a /metrics page with the Prometheus project's own Python client (PyPI), so the
tests read what a real scraper reads, and prints every sample as one JSON line.

Usage: prom_parse.py prometheus|openmetrics < page
Output: {"name": ..., "labels": {...}, "value": ...} per sample; exit 1 if it doesn't parse.
"""

import json
import sys

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families


def main():
    text = sys.stdin.read()
    parse = openmetrics_families if sys.argv[1] == "openmetrics" else text_string_to_metric_families
    for family in parse(text):
        for sample in family.samples:
            print(json.dumps({"name": sample.name, "labels": sample.labels, "value": sample.value}))


if __name__ == "__main__":
    main()
