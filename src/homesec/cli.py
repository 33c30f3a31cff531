"""The `homesec` command: run, validate, doctor, process, eval, config-reference."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from homesec.app import (
    Components,
    HomeSecApp,
    build_components,
    startup_errors,
)
from homesec.config_loader import load_config
from homesec.config_reference import config_reference
from homesec.doctor import DEFAULT_TIMEOUT_S, Finding, run_diagnosis
from homesec.errors import ConfigError, PluginError, StartupError
from homesec.evaluation import (
    LabelledClip,
    SettingScore,
    evaluate,
    load_labels,
    load_vlm_setting,
)
from homesec.interfaces import ClipNamer
from homesec.local_first import switch_off_telemetry
from homesec.models.clip import Clip, analysis_name, parse_clip_id, snapshot_name
from homesec.models.config import Config, VLMSection
from homesec.plugins.registry import load_filter
from homesec.telemetry import configure_logging
from homesec.telemetry_db import postgres_log_handler

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
_stderr = Console(stderr=True)

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="YAML configuration file", dir_okay=False)
]


def main() -> None:
    switch_off_telemetry()
    app()


@app.command()
def validate(config: ConfigOption) -> None:
    """Check a config file, plugin sections included; list every problem with its key path."""
    _load(config)
    typer.echo(f"{config}: OK")


@app.command()
def doctor(
    config: ConfigOption,
    timeout: Annotated[
        float, typer.Option(help="Seconds each check may take", min=0.1)
    ] = DEFAULT_TIMEOUT_S,
) -> None:
    """Check every configured part for real (database, storage, filter, VLM, notifiers,
    cameras) and print a table; exit 1 when a check fails."""
    loaded = _load(config)
    configure_logging("ERROR", loaded.logging.format)
    findings = run_diagnosis(loaded, timeout)
    _print_findings(findings)
    if any(not finding.ok for finding in findings):
        raise typer.Exit(code=1)


def _print_findings(findings: list[Finding]) -> None:
    table = Table(title="homesec doctor")
    for column in ("part", "check", "result", "details (what to fix)"):
        table.add_column(column)
    for finding in findings:
        result = "[green]OK[/green]" if finding.ok else "[bold red]FAIL[/bold red]"
        # Details quote servers and errors: "[Errno 111]" must stay text, not markup.
        table.add_row(Text(finding.part), Text(finding.check), result, Text(finding.detail))
    # Piped or captured output keeps one line per row, whatever its length.
    console = Console() if sys.stdout.isatty() else Console(width=1000)
    console.print(table)
    failed = sum(not finding.ok for finding in findings)
    console.print(f"{failed} of {len(findings)} checks failed" if failed else "every check passed")


@app.command("config-reference")
def print_config_reference() -> None:
    """Print the configuration reference (Markdown): every key of the core sections and of
    every installed plugin, with its type, default and description."""
    typer.echo(config_reference(), nl=False)


@app.command()
def run(config: ConfigOption) -> None:
    """Run the service: sources, pipeline and HTTP API, until SIGINT or SIGTERM."""
    loaded = _load(config)
    configure_logging(loaded.logging.level, loaded.logging.format)
    with _reported():
        asyncio.run(_run_service(loaded))


@app.command()
def process(
    config: ConfigOption,
    clips: Annotated[
        list[Path], typer.Argument(help="Clip files", exists=True, dir_okay=False, readable=True)
    ],
    camera: Annotated[
        str | None, typer.Option(help="Camera name for files not named {camera}_{unix_seconds}")
    ] = None,
) -> None:
    """Run the given files through the whole configured pipeline once; one JSON line per clip."""
    loaded = _load(config)
    configure_logging(loaded.logging.level, loaded.logging.format)
    cameras = {entry.name for entry in loaded.cameras}
    if camera is not None and camera not in cameras:
        _fail(f"--camera {camera!r} is not a configured camera ({', '.join(sorted(cameras))})")
    files = [path.resolve() for path in clips]
    with _reported():
        asyncio.run(_process_files(loaded, files, camera or loaded.cameras[0].name))


@app.command("eval")
def evaluate_vlm(
    config: ConfigOption,
    labels: Annotated[
        Path, typer.Option(help="YAML list of clips with expected risk_level and activity_type")
    ],
    vlm_config: Annotated[
        list[Path] | None,
        typer.Option("--vlm-config", help="Alternative `vlm:` sections to compare (repeatable)"),
    ] = None,
) -> None:
    """Compare VLM settings on labelled clips: accuracy, latency, tokens, estimated cost."""
    loaded = _load(config)
    configure_logging("WARNING", loaded.logging.format)
    with _reported():
        settings = {"config": loaded.vlm}
        settings |= {path.stem: load_vlm_setting(path) for path in vlm_config or []}
        labelled = load_labels(labels)
        scores = asyncio.run(_evaluate(loaded, labelled, settings))
    _print_scores(scores)


async def _evaluate(
    config: Config, labels: list[LabelledClip], settings: dict[str, VLMSection]
) -> list[SettingScore]:
    object_filter = load_filter(config.filter.backend, config.filter.config)
    try:
        return await evaluate(config, object_filter, labels, settings)
    finally:
        await object_filter.aclose()


def _print_scores(scores: list[SettingScore]) -> None:
    table = Table(title="VLM settings on labelled clips")
    for column in (
        "setting",
        "model",
        "risk acc",
        "activity acc",
        "errors",
        "p50 latency",
        "tokens in/out",
        "est. cost",
    ):
        table.add_column(column)
    for score in scores:
        table.add_row(
            score.name,
            score.model,
            f"{score.risk_accuracy:.0%}",
            f"{score.activity_accuracy:.0%}",
            str(score.errors),
            f"{score.p50_latency_s:.2f} s",
            f"{score.input_tokens}/{score.output_tokens}",
            f"${score.cost_usd:.4f}",
        )
    Console(width=140).print(table)


async def _run_service(config: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    # Telemetry to Postgres when a DSN is set: a queued handler that never blocks the loop.
    log_sink = postgres_log_handler(config.state_store)
    if log_sink is not None:
        logging.getLogger().addHandler(log_sink)
    try:
        await HomeSecApp(config).run(stop)
    finally:
        if log_sink is not None:
            logging.getLogger().removeHandler(log_sink)
            await asyncio.to_thread(log_sink.close)


async def _process_files(config: Config, files: list[Path], default_camera: str) -> None:
    with startup_errors():
        components = build_components(config)
    try:
        with startup_errors():
            await components.start()
        folder = config.pipeline.work_dir / "process"
        cameras = {entry.name for entry in config.cameras}
        async with _staged(files, folder, components.names, cameras, default_camera) as clips:
            await _process_clips(components, clips)
    finally:
        await components.aclose()


async def _process_clips(components: Components, clips: list[Clip]) -> None:
    with Progress(console=_stderr, disable=not sys.stderr.isatty(), transient=True) as bar:
        progress = bar.add_task("Processing clips", total=len(clips))

        async def one(clip: Clip) -> None:
            state = await components.pipeline.process(clip)
            typer.echo(state.model_dump_json())
            bar.advance(progress)

        await asyncio.gather(*(one(clip) for clip in clips))


@contextlib.asynccontextmanager
async def _staged(
    files: list[Path], folder: Path, names: ClipNamer, cameras: set[str], default_camera: str
) -> AsyncIterator[list[Clip]]:
    """Each file as a new clip (its own clip_id), linked (else copied) into HomeSec's work
    folder, removed afterwards.

    The pipeline writes a snapshot and the analysis next to a clip; the user's files and
    folders are only read (they may be an NVR export, or read-only).
    """
    staged: list[Clip] = []
    try:
        with startup_errors():
            await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        for path in files:
            clip = await _stage(path, folder, names, cameras, default_camera)
            staged.append(clip)
        yield staged
    finally:
        for clip in staged:
            for name in (clip.clip_id, snapshot_name(clip.clip_id), analysis_name(clip.clip_id)):
                (folder / name).unlink(missing_ok=True)


async def _stage(
    path: Path, folder: Path, names: ClipNamer, cameras: set[str], default_camera: str
) -> Clip:
    parsed = parse_clip_id(path.name)
    mtime = (await asyncio.to_thread(path.stat)).st_mtime
    named = parsed is not None and parsed.camera_name in cameras
    camera = parsed.camera_name if parsed is not None and named else default_camera
    start = float(parsed.unix_seconds) if parsed is not None and named else mtime
    while True:
        target = await names.claim(
            camera, int(start), path.suffix or ".mp4", folder, wanted=path.name if named else None
        )
        try:
            await asyncio.to_thread(_link_or_copy, path, target)
            break
        except FileExistsError:  # another `homesec process` staged a file of that name
            continue
    return Clip(
        clip_id=target.name,
        camera_name=camera,
        local_path=target,
        start_ts=datetime.fromtimestamp(start, UTC),
        end_ts=datetime.fromtimestamp(max(start, mtime), UTC),
        duration_s=max(0.0, mtime - start),
        source_backend="cli",
    )


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError:  # another file system, or links not allowed
        with source.open("rb") as reading, target.open("xb") as writing:
            shutil.copyfileobj(reading, writing)


def _load(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(code=2) from None
    except PluginError as exc:
        _fail(str(exc))


@contextlib.contextmanager
def _reported() -> Iterator[None]:
    """A problem HomeSec can name is one line for the user (exit 2), not a traceback."""
    try:
        yield
    except (ConfigError, PluginError, StartupError) as exc:
        _fail(str(exc))  # a ConfigError's text is its problems, joined


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)
