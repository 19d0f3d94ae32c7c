"""`claimledger`: run | serve | import | export | replay | dlq | keys | migrate | reweigh
(docs/architecture.md §6)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from contextlib import nullcontext
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    help="claimledger: versioned, explainable consensus over conflicting reports.",
    no_args_is_help=True,
)
console = Console()
SERVICES = {"ingest": 8001, "query": 8002, "reconcile": 8003}


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="ingest | reconcile | query")],
    host: str = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="default: 8001/8003/8002")] = None,
    log_level: Annotated[
        str | None, typer.Option(help="default: CLAIMLEDGER_LOG_LEVEL, else info")
    ] = None,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="proxies whose X-Forwarded-For is believed (IPs, CIDRs, *; comma-separated); "
            "default: CLAIMLEDGER_FORWARDED_ALLOW_IPS, else 127.0.0.1"
        ),
    ] = None,
) -> None:
    """Run one service, configured by CLAIMLEDGER_* environment variables.

    Logs are JSON lines on stderr (CLAIMLEDGER_LOG_FORMAT=console for humans).
    """
    from services.infra.logs import configure_logging
    from shared.settings import CommonSettings

    factories = {
        "ingest": "services.ingest.main:create_app",
        "reconcile": "services.reconcile.main:create_app",
        "query": "services.query.main:create_app",
    }
    if service not in factories:
        raise typer.BadParameter(f"unknown service {service!r}; one of {', '.join(factories)}")
    from services.ingest.workers import ingest_processes

    settings = CommonSettings()
    level = (log_level or settings.log_level).lower()
    configure_logging(service, level=level, fmt=settings.log_format)
    # ingest may run as several worker processes behind the port (CLAIMLEDGER_INGEST_WORKERS)
    single = nullcontext((factories[service], 1))
    with ingest_processes(level) if service == "ingest" else single as (factory, workers):
        _serve(
            factory,
            workers,
            host,
            port or SERVICES[service],
            level,
            forwarded_allow_ips or settings.forwarded_allow_ips,
        )


def _serve(factory: str, workers: int, host: str, port: int, level: str, trusted: str) -> None:
    import uvicorn

    uvicorn.run(
        factory,
        factory=True,
        workers=workers,  # CLAIMLEDGER_INGEST_WORKERS (services/ingest/workers.py)
        host=host,
        port=port,
        log_level=level,
        log_config=None,  # configure_logging did it: every line through structlog
        access_log=False,  # RequestContext logs each request, with its trace id
        timeout_graceful_shutdown=10,
        # behind a proxy, the client's address comes from X-Forwarded-For, but only when the
        # connection is from a trusted proxy (else anyone could pick their own address)
        proxy_headers=True,
        forwarded_allow_ips=trusted,
    )


@app.command()
def run(
    host: str = "127.0.0.1",
    var: Annotated[Path, typer.Option(help="where data lives")] = Path("var"),
    demo: Annotated[bool, typer.Option(help="load the seed-article demo")] = True,
    ingest_port: Annotated[int, typer.Option(envvar="CLAIMLEDGER_INGEST_PORT")] = 8001,
    query_port: Annotated[int, typer.Option(envvar="CLAIMLEDGER_QUERY_PORT")] = 8002,
    reconcile_port: Annotated[int, typer.Option(envvar="CLAIMLEDGER_RECONCILE_PORT")] = 8003,
) -> None:
    """Run everything on embedded defaults: local Redis, SQLite, the three services."""
    from services.infra.localredis import LocalRedis
    from services.infra.processes import die_with_parent

    ports = {"ingest": ingest_port, "query": query_port, "reconcile": reconcile_port}
    taken = ports_taken(host, ports)
    if taken:
        # before anything starts: a second `make run` would otherwise load its demo into the
        # first instance (and fail with its key) or die half-started
        for line in taken:
            console.print(f"[red]error:[/] {line}", highlight=False)
        console.print(
            "stop what holds them (Ctrl-C in the terminal of the other `make run`), or start "
            "on other ports, e.g. CLAIMLEDGER_INGEST_PORT=9001 CLAIMLEDGER_QUERY_PORT=9002 "
            "CLAIMLEDGER_RECONCILE_PORT=9003 make run",
            highlight=False,
        )
        raise typer.Exit(PORTS_TAKEN)
    env = dict(os.environ)
    local = None
    if not env.get("CLAIMLEDGER_REDIS_URL"):
        port = int(env.get("CLAIMLEDGER_REDIS_PORT", "0")) or None
        local = LocalRedis(var / "redis", port).start()
        env["CLAIMLEDGER_REDIS_URL"] = local.url
    env.setdefault("CLAIMLEDGER_LOG_FORMAT", "console")  # a terminal, not a log shipper
    env.setdefault("CLAIMLEDGER_DATABASE_URL", f"sqlite:///{(var / 'claimledger.db').resolve()}")
    write_key = env.get("CLAIMLEDGER_BOOTSTRAP_WRITE_KEY") or "cl_demo_" + secrets.token_urlsafe(18)
    env["CLAIMLEDGER_BOOTSTRAP_WRITE_KEY"] = write_key
    procs: list[subprocess.Popen[bytes]] = []

    def stop(*_: Any) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if local is not None:
            local.stop()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        for name, port in ports.items():
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "services.cli",
                        "serve",
                        name,
                        "--host",
                        host,
                        "--port",
                        str(port),
                        "--log-level",
                        "warning",
                    ],
                    # own session: a terminal's Ctrl-C reaches only `run`, which then stops
                    # the services before Redis, in order
                    env=env,
                    preexec_fn=die_with_parent,
                    start_new_session=True,
                )
            )
        urls = {name: f"http://{host}:{port}" for name, port in ports.items()}
        _wait_ready(urls, procs)
        if demo:
            loaded = load_demo(urls["ingest"], write_key)
            console.print(f"[green]demo loaded[/]: {loaded} seed reports")
        _print_urls(urls, env["CLAIMLEDGER_REDIS_URL"], env["CLAIMLEDGER_DATABASE_URL"], write_key)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        console.print("[red]a service exited; stopping everything[/]")
        raise typer.Exit(1)
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        stop()


PORTS_TAKEN = 3  # `run`'s exit status when a port it needs is in use


def ports_taken(host: str, ports: dict[str, int]) -> list[str]:
    """Why each of `ports` (service -> port) cannot be served on `host`; empty when all can."""
    problems = []
    for name, port in ports.items():
        if _can_bind(host, port):
            continue
        owner = _claimledger_service(host, port)
        holder = (
            f"a running claimledger (its {owner} service)"
            if owner
            else "another program (not claimledger)"
        )
        problems.append(f"port {port}, wanted for {name}, is taken by {holder}")
    return problems


def _can_bind(host: str, port: int) -> bool:
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # as uvicorn binds: a port left in TIME_WAIT by a stopped run counts as free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _claimledger_service(host: str, port: int) -> str | None:
    """The service name a claimledger answers with on /healthz there, else None."""
    target = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    netloc = f"[{target}]:{port}" if ":" in target else f"{target}:{port}"
    try:
        body = httpx.get(f"http://{netloc}/healthz", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return None
    service = body.get("service") if isinstance(body, dict) else None
    return service if service in SERVICES and body.get("status") == "ok" else None


def _wait_ready(urls: dict[str, str], procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    pending = dict(urls)
    while pending and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise typer.Exit(1)
        for name, url in list(pending.items()):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    pending.pop(name)
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    if pending:
        console.print(f"[red]not ready after 60s:[/] {', '.join(pending)}")
        raise typer.Exit(1)


def demo_reports() -> list[dict[str, Any]]:
    text = resources.files("shared.demo").joinpath("kursk.json").read_text(encoding="utf-8")
    return list(json.loads(text))


def load_demo(ingest_url: str, write_key: str | None) -> int:
    headers = {"Authorization": f"Bearer {write_key}"} if write_key else {}
    for report in demo_reports():
        response = httpx.post(f"{ingest_url}/v1/reports", json=report, headers=headers, timeout=30)
        if response.status_code not in (200, 202):
            raise RuntimeError(f"demo report rejected: {response.status_code} {response.text}")
    return len(demo_reports())


def cli_path() -> str:
    """How to call this `claimledger` from here: the script pip put beside this Python (in a
    checkout, `.venv/bin/claimledger`, which is not on the PATH unless the venv is active)."""
    script = Path(sys.executable).parent / "claimledger"
    if not script.exists():
        return "claimledger"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def _print_urls(urls: dict[str, str], redis_url: str, db_url: str, key: str) -> None:
    q = urls["query"]
    console.print(
        f"\n[bold]claimledger is running[/]\n"
        f"  web page     {q}/\n"
        f"  query API    {q}/docs\n"
        f"  ingest API   {urls['ingest']}/docs\n"
        f"  reconcile    {urls['reconcile']}/readyz  (metrics at /metrics)\n"
        f"  redis        {redis_url}\n"
        f"  database     {db_url}\n"
        f"  write key    {key}   (Authorization: Bearer …)\n"
        f"  command      {cli_path()} import|export|keys|...   (docs/import.md)\n\n"
        f"  try: curl '{q}/v1/consensus/dprk-troops-kursk/personnel_deployed'\n"
        f"Ctrl-C stops everything.\n"
    )


@app.command()
def replay(
    into: Annotated[
        str | None, typer.Option(help="target database URL (default: a temp file)")
    ] = None,
) -> None:
    """Rebuild all projections from the stored event log into fresh tables; compare hashes."""
    import tempfile

    from services.infra.db import make_engine
    from services.reconcile.replay import projection_hash
    from services.reconcile.replay import replay as do_replay
    from services.reconcile.store import Reconciler
    from shared.attributes import AttributeRegistry
    from shared.settings import CommonSettings

    settings = CommonSettings()
    source = make_engine(settings.database_url)
    target_url = into or f"sqlite:///{tempfile.mkdtemp(prefix='claimledger-replay-')}/replay.db"
    target = make_engine(target_url)
    started = time.perf_counter()
    registry = AttributeRegistry.load(settings.attributes_file)
    count = do_replay(source, target, Reconciler(registry, partitions=settings.partitions))
    elapsed = time.perf_counter() - started
    live, rebuilt = projection_hash(source), projection_hash(target)
    console.print(
        f"replayed {count} events in {elapsed:.2f}s ({count / max(elapsed, 1e-9):,.0f}/s)"
        f" into {target_url}"
    )
    console.print(f"live hash     {live}\nreplayed hash {rebuilt}")
    if live != rebuilt:
        console.print("[red]projections differ[/]")
        raise typer.Exit(1)
    console.print("[green]identical[/]")


dlq_app = typer.Typer(help="Dead-lettered stream entries.")
app.add_typer(dlq_app, name="dlq")


def _redis() -> Any:
    import redis

    from shared.settings import CommonSettings

    settings = CommonSettings()
    if settings.redis_cluster:
        return redis.RedisCluster.from_url(settings.redis_url)
    return redis.Redis.from_url(settings.redis_url)


@dlq_app.command("list")
def dlq_list(count: int = 100) -> None:
    """Show dead letters: where they came from and why they failed."""
    from shared.events import DEAD_LETTER_STREAM

    for entry_id, fields in _redis().xrange(DEAD_LETTER_STREAM, count=count):
        f = {k.decode(): v.decode(errors="replace") for k, v in fields.items()}
        console.print(f"{entry_id.decode()}  {f.get('stream')}  {f.get('error')}")


@dlq_app.command("redrive")
def dlq_redrive(entry_id: Annotated[list[str] | None, typer.Argument()] = None) -> None:
    """Send dead letters back to their stream (all, or the given ids)."""
    from shared.events import DEAD_LETTER_STREAM

    client = _redis()
    moved = 0
    for eid, fields in client.xrange(DEAD_LETTER_STREAM):
        if entry_id and eid.decode() not in entry_id:
            continue
        client.xadd(fields[b"stream"].decode(), {"__data__": fields[b"data"]})
        client.xdel(DEAD_LETTER_STREAM, eid)
        moved += 1
    console.print(f"re-driven {moved} entries")


keys_app = typer.Typer(help="API keys (stored hashed; a secret is shown once).")
app.add_typer(keys_app, name="keys")


def _engine() -> Any:
    from services.infra.db import create_schema, make_engine
    from shared.settings import CommonSettings

    engine = make_engine(CommonSettings().database_url)
    create_schema(engine)
    return engine


@keys_app.command("create")
def keys_create(
    scope: Annotated[list[str], typer.Option()] = ["write"],  # noqa: B006
    name: str = "",
) -> None:
    """Create a key with the given scopes (read, write, admin)."""
    from services.infra.keys import SCOPES, create_key

    bad = [s for s in scope if s not in SCOPES]
    if bad:
        raise typer.BadParameter(f"unknown scope(s) {bad}; one of {SCOPES}")
    key_id, secret = create_key(_engine(), scope, name)
    console.print(f"key id  {key_id}\nsecret  {secret}   (shown once)")


@keys_app.command("list")
def keys_list() -> None:
    """List keys (ids and scopes; secrets are never stored)."""
    from services.infra.keys import list_keys

    for row in list_keys(_engine()):
        console.print(row)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by id."""
    from services.infra.keys import revoke_key

    if not revoke_key(_engine(), key_id):
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")


@app.command()
def migrate() -> None:
    """Bring CLAIMLEDGER_DATABASE_URL's schema to the newest revision (services do this on
    start too; this is for a deploy step that migrates before rolling out)."""
    from services.infra.db import create_schema, make_engine, schema_revision
    from shared.settings import CommonSettings

    engine = make_engine(CommonSettings().database_url)
    create_schema(engine)
    console.print(f"schema at revision {schema_revision(engine)}")
    engine.dispose()


KEY_ENV = ["CLAIMLEDGER_API_KEY", "CLAIMLEDGER_WRITE_KEY"]


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    format: Annotated[
        str | None, typer.Option("--format", help="csv | tsv | jsonl | td (default: by extension)")
    ] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="FIELD=COLUMN, e.g. subject=object, source.id=source"),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="FIELD=TEXT, a constant, e.g. published_at=2024-01-01"),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="TOML or JSON file: map, set, columns, time_format")
    ] = None,
    columns: Annotated[
        str | None, typer.Option(help="names of a headerless file's columns, comma-separated")
    ] = None,
    time_format: Annotated[
        str | None, typer.Option(help="strptime format of the timestamp column")
    ] = None,
    na: Annotated[
        list[str] | None,
        typer.Option(help="a value meaning 'no value' (repeat; default NA, N/A, null, *, ...)"),
    ] = None,
    url: Annotated[str, typer.Option(help="ingest URL")] = "http://127.0.0.1:8001",
    key: Annotated[str | None, typer.Option(envvar=KEY_ENV, help="write key")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=1000)] = 500,
    state: Annotated[
        Path | None, typer.Option(help="checkpoint file (default .claimledger/import-*.json)")
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option(help="rejected rows, JSON lines (default FILE.rejects.jsonl)")
    ] = None,
    restart: Annotated[bool, typer.Option(help="ignore a checkpoint; start at row 1")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    json_summary: Annotated[
        bool, typer.Option("--json", help="print the summary as JSON on stdout")
    ] = False,
) -> None:
    """Import claims from CSV, TSV, JSON lines or truth-discovery tuples (docs/import.md)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from claimledger.bulk import Counts, plan_import, run_import
    from claimledger.client import ClaimledgerError, Client
    from claimledger.tabular import (
        FORMATS,
        MappingProblem,
        MappingSpec,
        merge_specs,
        parse_assignments,
        parse_mapping_file,
    )

    err = Console(stderr=True)
    try:
        if format is not None and format not in FORMATS:
            raise MappingProblem(f"--format must be one of {', '.join(FORMATS)}")
        base = (
            parse_mapping_file(mapping.read_text(encoding="utf-8"), mapping.name)
            if mapping is not None
            else MappingSpec()
        )
        flags = MappingSpec(
            columns=parse_assignments(map_ or [], "--map"),
            constants=parse_assignments(set_ or [], "--set"),
            time_format=time_format,
            names=tuple(c.strip() for c in columns.split(",")) if columns else None,
            format=format,  # type: ignore[arg-type]
            na=tuple(n for n in na if n) if na is not None else None,
        )
        plan = plan_import(
            file,
            merge_specs(base, flags),
            state_path=state,
            rejects_path=rejects,
            batch_size=batch_size,
        )
    except MappingProblem as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    total = file.stat().st_size
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rows]:>10,} rows  {task.fields[rate]:>8,.0f} rows/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        disable=not progress,
    )
    started = time.perf_counter()
    with bar:
        task = bar.add_task(file.name, total=total, rows=0, rate=0.0)
        this_run = [0]

        def report(done: int, rows: int, counts: Counts) -> None:
            this_run[0] = rows
            elapsed = max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=done, rows=counts.rows, rate=rows / elapsed)

        with Client(ingest_url=url, api_key=key, retries=8, max_backoff_s=30.0) as client:
            try:
                counts, resumed_at = run_import(plan, client, report, fresh=restart)
            except ClaimledgerError as exc:
                if exc.status in (401, 403):
                    err.print(
                        f"[red]refused:[/] {exc}\npass a write key: --key or CLAIMLEDGER_API_KEY"
                    )
                    raise typer.Exit(1) from None
                err.print(
                    f"[red]stopped:[/] {exc}\nre-run the same command to resume "
                    f"(checkpoint {plan.state_path})"
                )
                raise typer.Exit(1) from None
            except httpx.HTTPError as exc:
                err.print(
                    f"[red]stopped:[/] {exc!r}\nre-run the same command to resume from the "
                    f"last acknowledged batch (checkpoint {plan.state_path})"
                )
                raise typer.Exit(1) from None
            except KeyboardInterrupt:
                err.print(f"interrupted; re-run the same command to resume ({plan.state_path})")
                raise typer.Exit(130) from None
    elapsed = time.perf_counter() - started
    _print_import_summary(err, file, counts, this_run[0], resumed_at, elapsed, plan.rejects_path)
    if json_summary:
        print(
            json.dumps(
                {
                    **counts.as_json(),
                    "resumed_at_line": resumed_at,
                    "rows_this_run": this_run[0],
                    "seconds": round(elapsed, 3),
                    "rejects_file": str(plan.rejects_path) if counts.rejected else None,
                }
            )
        )


def _print_import_summary(
    out: Console,
    file: Path,
    counts: Any,
    this_run: int,
    resumed_at: int,
    elapsed: float,
    rejects: Path,
) -> None:
    resumed = (
        f" (resumed at line {resumed_at}; {this_run:,} rows in this run)" if resumed_at > 1 else ""
    )
    out.print(
        f"[bold]{file.name}[/]: {counts.rows:,} rows read{resumed} in {elapsed:.1f}s "
        f"({this_run / max(elapsed, 1e-9):,.0f} rows/s)\n"
        f"  claims accepted   {counts.accepted + counts.present:,}"
        f"  ({counts.accepted:,} new, {counts.present:,} already present)\n"
        f"  rejected          {counts.rejected:,}"
        f"  ({counts.rejected_local:,} by the importer, {counts.rejected_server:,} by the server)"
    )
    for reason, n in counts.reasons.most_common(5):
        out.print(f"    {n:>8,}  {escape(reason)}", highlight=False)  # text, not rich markup
    if counts.rejected:
        out.print(f"  rejected rows and reasons: {rejects}")


@app.command()
def export(
    as_of: Annotated[str | None, typer.Option(help="publication-time axis (default now)")] = None,
    recorded_as_of: Annotated[
        str | None, typer.Option(help="what the system knew at this recording time")
    ] = None,
    format: Annotated[str, typer.Option("--format", help="csv | jsonl")] = "csv",
    out: Annotated[str, typer.Option(help="file, or - for stdout")] = "-",
    url: Annotated[str, typer.Option(help="query URL")] = "http://127.0.0.1:8002",
    key: Annotated[str | None, typer.Option(envvar=KEY_ENV, help="read key, if required")] = None,
    page_size: Annotated[int, typer.Option(min=1, max=1000)] = 500,
) -> None:
    """Export every key's consensus (low, best, high, status, support, ...) to CSV or JSON lines."""
    from claimledger.bulk import run_export
    from claimledger.client import ClaimledgerError, Client

    err = Console(stderr=True)
    if format not in ("csv", "jsonl"):
        raise typer.BadParameter("one of csv, jsonl", param_hint="--format")
    with Client(query_url=url, api_key=key) as client:
        target = sys.stdout if out == "-" else open(out, "w", encoding="utf-8", newline="")  # noqa: SIM115
        try:
            count = run_export(
                client,
                target,
                format,
                as_of=as_of,
                recorded_as_of=recorded_as_of,
                page_size=page_size,
            )
        except (ClaimledgerError, httpx.HTTPError) as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
        finally:
            if target is not sys.stdout:
                target.close()
    err.print(f"exported {count:,} keys" + (f" to {out}" if out != "-" else ""))


@app.command()
def reweigh(
    pseudo_count: Annotated[float, typer.Option(help="shrinkage toward the average")] = 20.0,
    exponent: Annotated[float, typer.Option(help="sharpness of the learned scores")] = 0.3,
    tolerance: Annotated[float, typer.Option(help="relative error counted as agreement")] = 0.01,
) -> None:
    """Learn source reliability from the stored claims; append the scores as an event."""
    from services.ingest.learning import reweigh as do_reweigh
    from shared.consensus.reliability import Params
    from shared.settings import CommonSettings

    params = Params(tolerance=tolerance, pseudo_count=pseudo_count, exponent=exponent)
    started = time.perf_counter()
    done = do_reweigh(_engine(), CommonSettings().partitions, params)
    learned = done.learned
    console.print(
        f"learned {len(learned.scores)} source scores in {learned.rounds} rounds"
        f" ({'converged' if learned.converged else 'not converged'},"
        f" {time.perf_counter() - started:.2f}s); {len(done.changed)} changed"
    )
    if done.event is not None:
        console.print(f"appended {done.event.event_id} (token {done.token})")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
