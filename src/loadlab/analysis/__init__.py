"""From raw results to figures: percentiles, spreads, integrity."""
