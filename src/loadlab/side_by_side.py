"""`run --compare-pgbouncer`: each stack direct to PostgreSQL and through PgBouncer in
transaction mode, in one report; and `run --profiles A,B`: each stack under each profile.

The running services keep their route (direct, or through PgBouncer after `up --pgbouncer`).
For the other route a copy of each, with the same profile and knobs, runs on a free port for
the length of the run. A stack on asyncpg also gets a third copy: through PgBouncer with
asyncpg's *default* statement cache, to show what the documented settings
(services/fastapi_async/db.py) prevent. Each leg's driver exceptions are counted from its
service's log, by class, beside the errors the load generator saw.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from loadlab.errors import UsageError
from loadlab.load.experiment import Target
from loadlab.settings import StackSettings
from loadlab.stack import pgbouncer, postgres, procs, profiles, services
from loadlab.stack.procs import State

ROUTES = {False: "straight to PostgreSQL", True: "through PgBouncer (transaction mode)"}
DEFAULTS_SUFFIX = "+pgbouncer-asyncpg-defaults"
EXPECTED_FAILURE = (
    "asyncpg caches named prepared statements per connection, and PgBouncer in transaction "
    "mode runs the next transaction on whichever server connection is free"
)
# A driver's own exception at the start of a line of a logged traceback: one per failed
# request (SQLAlchemy's wrappers that follow it in the chain are not counted).
_DRIVER_EXCEPTION = re.compile(r"^(?:asyncpg|psycopg2?)\.(?:\w+\.)*(\w+)(?::|$)")


@dataclass(frozen=True)
class Leg:
    """One way a stack reaches the database, as it appears in the report."""

    name: str  # in the report
    variant: str  # in the registry
    route: str  # one of ROUTES
    statement_cache: str  # what the driver does with prepared statements on this leg
    log: Path
    log_offset: int  # the service's log before the run: the rest is this run's

    def as_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "route": self.route,
            "statement_cache": self.statement_cache,
            "driver_exceptions": driver_exceptions(self.log, self.log_offset),
            "expected_failure": EXPECTED_FAILURE if self.name.endswith(DEFAULTS_SUFFIX) else None,
        }


def _cache(variant: str, pooled: bool, safe: bool) -> str:
    driver = services.VARIANTS[variant].driver
    if driver == "psycopg2":
        return "none (psycopg2 prepares nothing)"
    if not pooled:
        return f"{driver}'s default"
    if not safe:
        return f"{driver}'s default (named statements cached per connection)"
    return "off, statements named uniquely (the documented settings)"


def _direct_url(state: State) -> str:
    """The services' role straight to PostgreSQL (the stack's direct URL is the superuser's
    on loadlab's own cluster)."""
    server = state.get("postgres")
    if server is not None and server.pid is not None:
        return (
            make_url(state.direct_database_url)
            .set(username=postgres.APP)
            .render_as_string(hide_password=False)
        )
    return state.direct_database_url


@contextmanager
def legs(
    settings: StackSettings, state: State, targets: list[Target]
) -> Iterator[tuple[list[Target], dict[str, Leg]]]:
    """Every target followed by its copies, and what each leg is. A copy starts when its
    leg is driven and stops when it ends (`launch`); the private PgBouncer, if one is
    needed, lives until the block ends."""
    with pgbouncer.transaction_pooler(settings, state) as pooler:
        if pooler is None:
            raise UsageError(
                "--compare-pgbouncer on a database loadlab did not start needs its PgBouncer: "
                "`python -m loadlab up --pgbouncer --database-url URL`"
            )
        pooled_url, pooler_pid = pooler
        found: list[Target] = []
        described: dict[str, Leg] = {}
        for target in targets:
            label = services.VARIANTS[target.name].label
            found.append(dataclasses.replace(target, label=f"{label}, {ROUTES[state.pgbouncer]}"))
            log = _log(settings, target.name)
            offset = log.stat().st_size if log.exists() else 0  # the rest is this run's
            own = _leg(target.name, target.name, state.pgbouncer, True, log, offset)
            described[target.name] = own
            assert target.setup is not None  # one of the stack's own services
            setup = services.Setup(target.setup["profile"], target.setup["knobs"])
            for name, pooled, safe in _copies(target.name, state.pgbouncer):
                url = pooled_url if pooled else _direct_url(state)
                extra = {"pgbouncer": pooler_pid} if pooled else {}
                copy = _Copy(settings, target, name, url, setup, safe, extra)
                failing = EXPECTED_FAILURE if name.endswith(DEFAULTS_SUFFIX) else None
                found.append(copy.target(f"{label}, {ROUTES[pooled]}", failing))
                described[name] = _leg(name, target.name, pooled, safe, _log(settings, name))
        yield found, described


def _log(settings: StackSettings, name: str) -> Path:
    return settings.state_dir / "logs" / f"{name}.log"


@dataclass(frozen=True)
class _Copy:
    """A copy of a stack's service for one leg, started when the leg is driven."""

    settings: StackSettings
    original: Target
    name: str
    database_url: str
    setup: services.Setup
    pgbouncer_safe: bool
    extra_pids: dict[str, int]

    def target(self, label: str, expected_failure: str | None = None) -> Target:
        _log(self.settings, self.name).unlink(missing_ok=True)  # this run's log only
        return Target(self.name, label, "", {}, self.setup.as_dict(), self.launch, expected_failure)

    @contextmanager
    def launch(self) -> Iterator[Target]:
        """The copy, started and healthy, as the target to drive; stopped when the leg
        ends, so nothing it still has in flight (a deadlocked backlog) reaches the next."""
        with copy_of(
            self.settings,
            self.original.name,
            self.name,
            self.database_url,
            self.setup,
            self.pgbouncer_safe,
        ) as component:
            pids = {k: v for k, v in self.original.pids.items() if k == "postgres"}
            pids[self.name] = component.current_pid() or 0
            pids.update(self.extra_pids)
            yield Target(self.name, "", component.url, pids, self.setup.as_dict())


def _copies(variant: str, stack_pooled: bool) -> list[tuple[str, bool, bool]]:
    """(name, through PgBouncer, with the documented statement settings) of each copy."""
    other = [(f"{variant}+direct", False, False)] if stack_pooled else []
    other = other or [(f"{variant}+pgbouncer", True, True)]
    if services.VARIANTS[variant].driver == "asyncpg":
        other.append((variant + DEFAULTS_SUFFIX, True, False))
    return other


def _leg(name: str, variant: str, pooled: bool, safe: bool, log: Path, offset: int = 0) -> Leg:
    return Leg(name, variant, ROUTES[pooled], _cache(variant, pooled, safe), log, offset)


def profile_setups(
    settings: StackSettings, variants: list[str], names: list[str]
) -> dict[str, services.Setup]:
    """VARIANT@PROFILE -> its setup (the profile, then the knob flags), each profile loaded
    now: a missing one is said before anything starts."""
    return {
        f"{variant}@{name}": services.Setup(
            name,
            services.VARIANTS[variant].knobs(
                profiles.load(variant, name, settings.profiles_dir).knobs, settings.knob_flags()
            ),
        )
        for variant in variants
        for name in names
    }


def profile_legs(
    settings: StackSettings, state: State, targets: list[Target], names: list[str]
) -> list[Target]:
    """Each target under each named profile: copies named VARIANT@PROFILE on the stack's
    route, each started for its own leg (the running services are left as they are)."""
    setups = profile_setups(settings, [t.name for t in targets], names)
    found = []
    for target in targets:
        for name in names:
            leg = f"{target.name}@{name}"
            url, pooled = state.database_url, state.pgbouncer
            bouncer = {k: v for k, v in target.pids.items() if k == "pgbouncer"}  # its route
            copy = _Copy(settings, target, leg, url, setups[leg], pooled, bouncer)
            label = f"{services.VARIANTS[target.name].label}, profile {name}"
            # A profile made to show a failure says so (profiles/*.nested-session.json).
            failing = profiles.load(target.name, name, settings.profiles_dir).details.get(
                "expected_failure"
            )
            found.append(copy.target(label, failing))
    return found


@contextmanager
def copy_of(
    settings: StackSettings,
    variant: str,
    name: str,
    database_url: str,
    setup: services.Setup,
    pgbouncer_safe: bool,
) -> Iterator[procs.Component]:
    """A copy of a stack's service under `name` on a free port, healthy, stopped after."""
    environment = {"DB_PGBOUNCER_SAFE": "1" if pgbouncer_safe else "0"}
    with procs.interrupts_held():
        component = services.start(
            services.VARIANTS[variant],
            settings,
            database_url,
            setup,
            copy=(name, procs.free_port(), environment),
        )
    try:
        services.wait_healthy(component, settings.ready_timeout)
        yield component
    finally:
        with procs.interrupts_held():
            procs.stop(component)


def driver_exceptions(log: Path, offset: int = 0) -> dict[str, int]:
    """The driver's exceptions in a service's log after `offset`, by class, most first."""
    if not log.exists():
        return {}
    with log.open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    found = Counter(m.group(1) for m in map(_DRIVER_EXCEPTION.match, text.splitlines()) if m)
    return dict(found.most_common())
