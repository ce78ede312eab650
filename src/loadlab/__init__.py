"""loadlab: Flask + sync SQLAlchemy against FastAPI + async SQLAlchemy, under real load."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository: infra/, services/ and locustfiles/ are read from here."""
