"""``kelpseg ablate``: train the base and every variant on the same folds, seeds and budget.

Each run is ``kelpseg train --config BASE --set <user overrides> --set <variant's keys>`` with
its seed, fold and run folder ``OUT/runs/<variant>/fold-<k>-seed-<s>``. A run whose
``result.json`` exists is read back instead of trained (a re-run resumes an interrupted
ablation); one stopped mid-training resumes from its ``last.ckpt``. A run folder whose saved
config differs from the one the spec asks for is refused, so a table never mixes settings.
"""

from __future__ import annotations

import gc
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from kelpseg.ablate.config import BASE_NAME, AblationSpec, Variant
from kelpseg.ablate.table import RunScore, summarise, write_tables
from kelpseg.config import load_config, read_yaml, save_config
from kelpseg.console import progress
from kelpseg.errors import KelpsegError
from kelpseg.nn.config import TrainConfig
from kelpseg.tune.space import format_override

PathLike = str | os.PathLike[str]
RUNS_DIR = "runs"
SPEC_FILE = "ablation_spec.yaml"
# Runs are many and short: no progress bar per run, one device (as the tuner does).
RUN_DEFAULTS = ["trainer.enable_progress_bar=false"]


@dataclass
class AblationResult:
    """What :func:`run_ablation` produced.

    Attributes:
        out_dir: the ablation folder.
        runs: one row per (variant, fold, seed): ``variant, fold, seed, dice, trained``.
        table: one row per variant (see :func:`kelpseg.ablate.table.summarise`).
        csv: the table as CSV; markdown: the table as a markdown file.
    """

    out_dir: Path
    runs: pd.DataFrame
    table: pd.DataFrame
    csv: Path
    markdown: Path


def load_spec(path: PathLike) -> AblationSpec:
    """Read and validate an ablation spec YAML file."""
    return load_config(AblationSpec, path)


def run_config(
    base: PathLike,
    overrides: list[str],
    variant: Variant | None,
    fold: int,
    seed: int,
    run_dir: Path,
) -> TrainConfig:
    """The training config of one run: base + overrides + variant + seed, fold and folder."""
    own = [
        format_override("seed", seed),
        format_override("data.fold", fold),
        format_override("output_dir", str(run_dir)),
    ]
    extra = variant.overrides() if variant is not None else []
    try:
        return load_config(TrainConfig, base, [*RUN_DEFAULTS, *overrides, *extra, *own])
    except KelpsegError as exc:
        name = variant.name if variant is not None else BASE_NAME
        raise KelpsegError(f"variant {name!r}: {exc.message}", exc.path) from exc


def run_ablation(
    base_config: PathLike,
    spec: AblationSpec,
    out_dir: PathLike,
    overrides: list[str] | None = None,
    *,
    show_progress: bool = True,
) -> AblationResult:
    """Train (or read back) every run of an ablation and write its table.

    Args:
        base_config: the training config YAML every run starts from.
        spec: the variants, seeds and folds.
        out_dir: the ablation folder (runs, ``ablation.csv``, ``ablation.md``).
        overrides: ``key=value`` overrides applied to every run (before the variant's).
        show_progress: draw a progress bar over runs.

    Raises:
        KelpsegError: a base without validation, a variant the config refuses, a run folder
            holding another config, or a run that reports no validation Dice.
    """
    out = Path(out_dir)
    overrides = list(overrides or [])
    base = run_config(base_config, overrides, None, 0, spec.seeds[0], out / "check")
    folds = spec.folds or ([base.data.fold] if base.data.fold is not None else [])
    if not folds:
        raise KelpsegError("an ablation needs a validation fold (data.fold is null)", base_config)
    plan = [
        (variant, fold, seed)
        for variant in [None, *spec.variants]
        for fold in folds
        for seed in spec.seeds
    ]
    configs = [
        run_config(base_config, overrides, v, f, s, _run_dir(out, v, f, s)) for v, f, s in plan
    ]  # every config is built (and checked) before the first run trains
    out.mkdir(parents=True, exist_ok=True)
    save_config(spec, out / SPEC_FILE)
    scores: list[RunScore] = []
    with progress(disable=not show_progress) as bar:
        task = bar.add_task("ablation runs", total=len(plan))
        for (variant, fold, seed), config in zip(plan, configs, strict=True):
            name = variant.name if variant is not None else BASE_NAME
            bar.update(task, description=f"{name} fold {fold} seed {seed}")
            dice, trained = _run(config, spec.keep_checkpoints)
            scores.append(RunScore(name, fold, seed, dice, trained))
            bar.advance(task)
    runs = pd.DataFrame([s.__dict__ for s in scores])
    descriptions = {BASE_NAME: "the base config", **{v.name: v.description for v in spec.variants}}
    table = summarise(runs, descriptions)
    csv, markdown = write_tables(out, runs, table)
    return AblationResult(out, runs, table, csv, markdown)


def _run_dir(out: Path, variant: Variant | None, fold: int, seed: int) -> Path:
    name = variant.name if variant is not None else BASE_NAME
    return (out / RUNS_DIR / name / f"fold-{fold}-seed-{seed}").resolve()


def _run(config: TrainConfig, keep_checkpoints: bool) -> tuple[float, bool]:
    """Best val Dice of one run, and whether it was trained now (False: read back)."""
    from kelpseg.nn.train import TrainResult, train  # the training stack loads only here

    run_dir = Path(config.output_dir)
    _check_same_config(config, run_dir)
    result_file = run_dir / "result.json"
    if result_file.is_file():
        result = TrainResult.load(result_file)
        trained = False
    else:
        resume = (run_dir / "checkpoints" / "last.ckpt").is_file()
        try:
            result = train(config, resume=resume)
        finally:
            gc.collect()
        trained = True
        if not keep_checkpoints:
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    if result.best_dice is None:
        raise KelpsegError("the run reported no val/dice", run_dir)
    return float(result.best_dice), trained


def _check_same_config(config: TrainConfig, run_dir: Path) -> None:
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        return
    want = yaml.safe_load(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    if read_yaml(saved) != want:
        raise KelpsegError(
            "holds a run of another config (the spec or base changed): delete it or use "
            "another --out",
            run_dir,
        )
