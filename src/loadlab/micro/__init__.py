"""`loadlab micro`: the article's experiments re-run on the real database, one at a time.

- harness.py: the registry, warm-up, repeats and spread, the separate profiling pass;
- serial.py: the article's serial benchmark table (SELECT by key, eager loading, bulk
  inserts, the raw driver's join);
- overheads.py: its five sources of async overhead, each measured;
- findings.py: every claim of the article and the two guides beside our figure.
"""
