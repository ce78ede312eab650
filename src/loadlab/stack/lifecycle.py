"""`up`, `down` and `status`: the stack as one unit, recorded in the state folder."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import psycopg2
from sqlalchemy.engine import make_url

from loadlab.errors import UsageError
from loadlab.settings import StackSettings
from loadlab.stack import (
    credentials,
    pgbouncer,
    placement,
    postgres,
    procs,
    profiles,
    seed,
    services,
)
from loadlab.stack.procs import Component, State


def port_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers do: a port left in TIME_WAIT by the last run is free to listen on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def check_port_free(port: int, flag: str) -> None:
    """Exit 2 (UsageError) naming `flag` when something already listens on the port."""
    if not port_free(port):
        raise UsageError(
            f"port {port} on 127.0.0.1 is already in use: stop what holds it or pass {flag}"
        )


def _existing(settings: StackSettings) -> State | None:
    state = procs.load_state(settings.state_dir)
    if state is None:
        return None
    started = [c for c in state.components if c.pid is not None]
    dead = [c.name for c in started if not c.alive()]
    if started and not dead:
        return state
    raise UsageError(
        f"stale state in {settings.state_dir} ({', '.join(dead) or 'nothing'} no longer "
        "running): run `python -m loadlab down` to clear it, then `up` again"
    )


def up(settings: StackSettings) -> tuple[State, bool]:
    """Start PostgreSQL (unless an existing one is given), the seed, PgBouncer if asked, and
    the chosen services (--variants; the duel's two by default); wait until each is healthy.
    On a stack that is up, start the chosen services that are not running and restart those
    asked to run another profile or knobs, and leave them up. Returns the state and whether
    this call started the stack itself: what a command that stops "the stack it started"
    stops. Services added to a stack that was up do not count (they stay, as after `run
    --variants X`): counting them once took down, after `loadtest --variants all`, the stack
    `make evidence` had started for the experiments after it.
    On any failure or interrupt of a fresh start, everything started so far is stopped."""
    names = services.names(settings.variants)
    if (running := _existing(settings)) is not None:
        if settings.pgbouncer and not running.pgbouncer:
            raise UsageError(
                "the stack is already up without PgBouncer: run `python -m loadlab down` "
                "first, then `up --pgbouncer`"
            )
        ensure_services(settings, running, names)
        place(running)
        return running, False
    setups = wanted(settings, names, None)  # a missing profile is said before anything starts
    ports = [(settings.port_of(n, services.VARIANTS[n].port), f"--port {n}=PORT") for n in names]
    if settings.database_url is None:
        ports.append((settings.pg_port, "--pg-port"))
    if settings.pgbouncer:
        ports.append((settings.pgbouncer_port, "--pgbouncer-port"))
    for port, flag in ports:
        check_port_free(port, flag)
    pg_bin = postgres.find_bin(settings.pg_bin) if settings.database_url is None else None
    if settings.pgbouncer:
        pgbouncer.find_binary()
        if settings.database_url is not None and not make_url(settings.database_url).password:
            # PgBouncer logs in to PostgreSQL itself, with the password in its auth file.
            raise UsageError("--pgbouncer with --database-url needs the password in the URL")

    state = State(pgbouncer=settings.pgbouncer, scale=settings.scale)
    try:
        _start_all(settings, state, pg_bin, setups)
    except BaseException:
        # A second Ctrl-C must not cut the clean-up short and leave orphans behind.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            _stop_all(settings, state)
        finally:
            signal.signal(signal.SIGINT, previous)
        raise
    place(state)
    return state, True


def place(state: State) -> None:
    """Every component's process tree on the stack's side of this command's placement
    (a stack started under another placement is moved)."""
    roots = [pid for c in state.components if (pid := c.current_pid()) is not None]
    placement.active().apply_to_stack(roots)


def _record(settings: StackSettings, state: State, component: Component) -> Component:
    """Add a started component to state.json (inside procs.interrupts_held with its start)."""
    state.components.append(component)
    procs.save_state(settings.state_dir, state)
    return component


def _runtime(settings: StackSettings, user: str | None) -> Path:
    folder = procs.runtime_dir(settings.state_dir, user)
    assert folder is not None  # created when missing
    return folder


def _log(settings: StackSettings, name: str) -> Path:
    return settings.state_dir / "logs" / f"{name}.log"


def _start_all(
    settings: StackSettings, state: State, pg_bin: Any, setups: dict[str, services.Setup]
) -> None:
    user = procs.unprivileged_user()
    passfile = credentials.passfile(settings.state_dir)
    if settings.database_url is not None:
        # The services use the role given; its password, if any, goes to the password file.
        direct = credentials.store(passfile, settings.database_url)
        _record(settings, state, Component(name="postgres", url=credentials.redact(direct)))
        postgres.wait_ready(direct, settings.ready_timeout)
        postgres.apply_schema(direct)
        role = make_url(direct).username or ""
        secret, state.database_url = str(make_url(settings.database_url).password or ""), direct
    else:
        direct, secret = _own_cluster(settings, state, pg_bin, user, passfile)
        role = postgres.APP
        state.database_url = postgres.url(settings.pg_port, user=role, passfile=passfile)
    state.direct_database_url = direct
    seed.reset(direct, seed.Scale.of(settings.scale))

    if settings.pgbouncer:
        folder = _runtime(settings, user) / "pgbouncer"
        with procs.interrupts_held():
            component, through = pgbouncer.start(
                direct,
                role,
                secret,
                settings.pgbouncer_port,
                folder,
                _log(settings, "pgbouncer"),
                user,
            )
            _record(settings, state, component)
        if settings.database_url is not None:  # its password serves PgBouncer's port too
            with_password = make_url(through).set(password=secret)
            state.database_url = credentials.store(passfile, with_password.render_as_string(False))
        else:
            state.database_url = credentials.with_passfile(through, passfile)
        postgres.wait_ready(state.database_url, settings.ready_timeout, component)

    _start_services(settings, state, setups)


def wanted(
    settings: StackSettings, names: list[str], running: State | None
) -> dict[str, services.Setup]:
    """The profile and knobs each named service should run with: a running service keeps
    its own unless --profile or a knob flag is given; any other starts with --profile (or
    "default"), the knob flags applied on top."""
    flags = settings.knob_flags()
    setups = {}
    for name in names:
        current = running.get(name) if running else None
        if current is not None and current.setup and settings.profile is None and not flags:
            setups[name] = services.Setup(current.setup["profile"], current.setup["knobs"])
            continue
        profile = profiles.load(name, settings.profile or profiles.DEFAULT, settings.profiles_dir)
        setups[name] = services.Setup(
            profile.name, services.VARIANTS[name].knobs(profile.knobs, flags)
        )
    return setups


def ensure_services(settings: StackSettings, state: State, names: list[str]) -> bool:
    """On a running stack: start the named services that are not running, and restart each
    whose profile or knobs differ from what is wanted (same port). Whether any started."""
    return apply_setups(settings, state, wanted(settings, names, state))


def apply_setups(settings: StackSettings, state: State, setups: dict[str, services.Setup]) -> bool:
    """Each service in `setups` running with exactly that setup: started if missing,
    restarted on its own port if it runs another. Whether any started."""
    changed = {}
    for name, setup in setups.items():
        current = state.get(name)
        if current is not None and current.alive() and current.setup == setup.as_dict():
            continue
        if current is not None:
            procs.stop(current)
            state.components.remove(current)
            procs.save_state(settings.state_dir, state)
            port = urlsplit(current.url).port  # restarted where it was
            ports = {**settings.service_ports, name: port}
            settings = settings.model_copy(update={"service_ports": ports})
        changed[name] = setup
    if changed:
        for name in changed:
            port = settings.port_of(name, services.VARIANTS[name].port)
            check_port_free(port, f"--port {name}=PORT")
        _start_services(settings, state, changed)
    return bool(changed)


def _start_services(
    settings: StackSettings, state: State, setups: dict[str, services.Setup]
) -> None:
    started = []
    for name, setup in setups.items():
        with procs.interrupts_held():
            component = services.start(services.VARIANTS[name], settings, state.database_url, setup)
            started.append(_record(settings, state, component))
    for component in started:
        services.wait_healthy(component, settings.ready_timeout)


def _own_cluster(
    settings: StackSettings, state: State, pg_bin: Any, user: str | None, passfile: Path
) -> tuple[str, str]:
    """Start loadlab's own PostgreSQL (password authentication only) with the schema and the
    services' role; returns the superuser's URL and the SCRAM verifier of the services'
    role (for PgBouncer, which passes the services' proof on to PostgreSQL)."""
    pgdata = _runtime(settings, user) / "pgdata"
    postgres.init_cluster(pg_bin, pgdata, user, credentials.role_password(passfile, postgres.ADMIN))
    with procs.interrupts_held():
        component = _record(
            settings,
            state,
            postgres.start(pg_bin, pgdata, settings.pg_port, _log(settings, "postgres"), user),
        )
    direct = postgres.url(settings.pg_port, passfile=passfile)
    postgres.wait_ready(
        postgres.url(settings.pg_port, "postgres", passfile=passfile),
        settings.ready_timeout,
        component,
    )
    postgres.create_database(settings.pg_port, passfile)
    postgres.apply_schema(direct, own_cluster=True)
    verifier = credentials.scram_sha_256(credentials.role_password(passfile, postgres.APP))
    postgres.grant_app_role(direct, verifier)
    return direct, verifier


def _stop_all(settings: StackSettings, state: State) -> list[str]:
    """Stop every recorded component; the ports they served that are still taken, each as
    a sentence (the state file is kept then, so `down` can be run again)."""
    for component in reversed(state.components):
        procs.stop(component)
    held = [
        f"port {port} ({c.name}) is still in use{_holder(port)}"
        for c in state.components
        if c.pid is not None and (port := urlsplit(c.url).port) and not port_free(port)
    ]
    if not held:
        (settings.state_dir / procs.STATE_FILE).unlink(missing_ok=True)
    return held


def _holder(port: int) -> str:
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            with contextlib.suppress(psutil.Error):
                return f" by pid {conn.pid} ({psutil.Process(conn.pid).name()})"
    return ""


def down(settings: StackSettings, purge: bool = False) -> tuple[list[str], list[str]]:
    """Stop everything `up` recorded, leftovers included (workers whose master died, a
    PostgreSQL restarted outside loadlab); with purge, delete the cluster and logs too.
    Returns the names of what was running, and the ports still taken afterwards."""
    state = procs.load_state(settings.state_dir)
    stopped: list[str] = []
    held: list[str] = []
    if state is not None:
        stopped = [c.name for c in state.components if c.alive() or c.leftovers()]
        held = _stop_all(settings, state)
    if purge and not held:
        runtime = procs.runtime_dir(settings.state_dir, procs.unprivileged_user(), create=False)
        if runtime is not None:
            shutil.rmtree(runtime, ignore_errors=True)
        shutil.rmtree(settings.state_dir, ignore_errors=True)
    return stopped, held


def _db_healthy(url: str) -> bool:
    try:
        conn = psycopg2.connect(url, connect_timeout=2)
        conn.close()
        return True
    except psycopg2.Error:
        return False


def status(settings: StackSettings) -> list[dict[str, Any]]:
    """Every recorded component: name, PID, whether it is healthy, URL (no password)."""
    state = procs.load_state(settings.state_dir)
    if state is None:
        return []
    rows = []
    for c in state.components:
        pid = c.current_pid()  # PostgreSQL's may have changed: restarted outside loadlab
        running = c.pid is None or pid is not None
        if c.name in services.VARIANTS:
            ok = running and services.healthy(c.url)
        elif c.name == "postgres":
            ok = running and _db_healthy(state.direct_database_url)
        else:
            ok = running and _db_healthy(state.database_url)
        rows.append({"name": c.name, "pid": pid, "running": running, "healthy": ok, "url": c.url})
    return rows
