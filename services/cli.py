"""`claimledger`: run | serve | replay | dlq | keys | reweigh (DESIGN.md §6)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

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
    log_level: str = "info",
) -> None:
    """Run one service, configured by CLAIMLEDGER_* environment variables."""
    import uvicorn

    factories = {
        "ingest": "services.ingest.main:create_app",
        "reconcile": "services.reconcile.main:create_app",
        "query": "services.query.main:create_app",
    }
    if service not in factories:
        raise typer.BadParameter(f"unknown service {service!r}; one of {', '.join(factories)}")
    uvicorn.run(
        factories[service],
        factory=True,
        host=host,
        port=port or SERVICES[service],
        log_level=log_level,
        timeout_graceful_shutdown=10,
    )


@app.command()
def run(
    host: str = "127.0.0.1",
    var: Annotated[Path, typer.Option(help="where data lives")] = Path("var"),
    demo: Annotated[bool, typer.Option(help="load the seed-article demo")] = True,
) -> None:
    """Run everything on embedded defaults: local Redis, SQLite, the three services."""
    from services.localredis import LocalRedis
    from services.processes import die_with_parent

    env = dict(os.environ)
    local = None
    if not env.get("CLAIMLEDGER_REDIS_URL"):
        port = int(env.get("CLAIMLEDGER_REDIS_PORT", "0")) or None
        local = LocalRedis(var / "redis", port).start()
        env["CLAIMLEDGER_REDIS_URL"] = local.url
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
        for name, port in SERVICES.items():
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
        urls = {name: f"http://{host}:{port}" for name, port in SERVICES.items()}
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
        f"  write key    {key}   (Authorization: Bearer …)\n\n"
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

    from services.db import make_engine
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
    count = do_replay(source, target, Reconciler(AttributeRegistry.load(settings.attributes_file)))
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

    return redis.Redis.from_url(CommonSettings().redis_url)


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
    from services.db import create_schema, make_engine
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
    from services.keys import SCOPES, create_key

    bad = [s for s in scope if s not in SCOPES]
    if bad:
        raise typer.BadParameter(f"unknown scope(s) {bad}; one of {SCOPES}")
    key_id, secret = create_key(_engine(), scope, name)
    console.print(f"key id  {key_id}\nsecret  {secret}   (shown once)")


@keys_app.command("list")
def keys_list() -> None:
    """List keys (ids and scopes; secrets are never stored)."""
    from services.keys import list_keys

    for row in list_keys(_engine()):
        console.print(row)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by id."""
    from services.keys import revoke_key

    if not revoke_key(_engine(), key_id):
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")


@app.command()
def reweigh(
    pseudo_count: Annotated[float, typer.Option(help="shrinkage toward the average")] = 20.0,
    exponent: Annotated[float, typer.Option(help="sharpness of the learned scores")] = 0.3,
    tolerance: Annotated[float, typer.Option(help="relative error counted as agreement")] = 0.01,
) -> None:
    """Learn source reliability from the stored claims; append the scores as an event."""
    from services.reweigh import reweigh as do_reweigh
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
