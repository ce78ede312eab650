"""Reports: a self-contained HTML page and summary.json per run, and an index of runs."""
