"""Experiment configuration."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional, Union

from maggy.ablation.study import AblationStudy
from maggy.trial import check_direction

__all__ = ["AblationConfig"]

def _check_number(name: str, value: Any, minimum: float, integer: bool = False, allow_none: bool = False):
    if value is None and allow_none:
        return
    kind = "an int" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or (not integer and math.isnan(value)) or value < minimum:
        raise ValueError(f"{name} must be {kind} >= {minimum}, got {value!r}")


@dataclasses.dataclass
class AblationConfig:
    """How an ablation study runs.

    Args:
        ablation_study: the declared study.
        ablator: policy name (``"loco"``, alias ``"loco_pytorch"``), class or instance.
        direction: ``"max"`` or ``"min"``: which way the metric is better.
        name: experiment name, used for the experiment directory.
        description: free text stored with the config.
        optimization_key: the key of the metric when ``train_fn`` returns a dict.
        hb_interval: seconds between heartbeats when a trial reports nothing new.
        es_policy: ``"median"`` (the median stopping rule), ``"base"`` (stop a trial that
            trails the base trial, see ``es_margin``), ``"none"``, or an
            ``AbstractEarlyStop`` instance; ``None`` (the default) takes the ablator's
            default: the median rule for LOCO, none for pairs and Shapley (a stopped trial
            has no final metric to combine with the others).
        es_interval: consult the early-stopping rule after every ``es_interval``-th step.
        es_min: finished trials needed before the median rule may stop anything.
        es_grace_steps: no early-stopping decision before a trial reported this many metrics.
        es_margin: ``es_policy="base"``: how far (relative to the base trial's metric at the
            same step) a trial must trail the base to count as trailing; 0.25 = 25% worse.
        es_patience: ``es_policy="base"``: consecutive trailing steps before the trial stops.
        num_executors: parallel trial slots; ``None`` uses what the cluster offers.
        seed: seed set before each trial's model is built and before ``train_fn`` runs, so
            base and ablated models start from the same weights; ``None`` disables seeding.
        max_trial_retries: how often a trial lost with its executor is run again.
        experiment_dir: where runs are written (``<experiment_dir>/<name>/run_N``).
        resume: continue the latest run of this experiment, running only trials without
            a result in its journal.
        repeats: run every trial this many times with seeds ``seed .. seed + repeats - 1``;
            ``"auto"``: run ``min_repeats`` paired repeats, then one more repeat at a time of
            the base trial and the components still ``undetermined``, up to ``max_repeats``
            (docs/reading.md).
        min_repeats: repeats before ``repeats="auto"`` first judges the components (>= 2).
        max_repeats: most repeats ``repeats="auto"`` runs.
        alpha: significance level of the study's verdicts (Holm over components; spent
            over the looks of ``repeats="auto"``).
        min_effect: effects whose whole 95% interval lies within ±``min_effect`` are
            ``negligible``; ``None``: no component is called negligible.
        noise_runs: run the base trial this many extra times (seeds after the repeats'), a
            cheap estimate of run-to-run noise; single-run deltas within it are flagged.
            ``ablator="loco"`` only (other policies refuse it).
        max_trials: ``ablator="shapley"`` only: the budget, in trials per repeat; ``None``
            means 4 per component.
        hb_timeout: seconds without a heartbeat after which a running trial counts as lost.
        tls: encrypt the driver's gRPC channel with a certificate made for this run, which
            executors pin (docs/faults.md); ``None`` (default): on when executors may run on
            other machines, off for a local master.
        preflight: build every trial's model on the driver before starting Spark, so
            impossible ablations fail in seconds.
        verbose: show the progress bar and print the summary.
        gpus_per_trial: GPUs each trial gets, requested from Spark per task with a task
            ``ResourceProfile`` (on a local master: the slot's own share of the machine's
            GPUs); ``None`` takes what the session assigns (``spark.task.resource.gpu.amount``).
        cpus_per_trial: CPU cores each trial gets, requested the same way; ``None`` uses
            ``spark.task.cpus``.
        data_cache_mb: memory budget, in MB, of each Python worker's cache of the catalog
            columns it read (consecutive trials reuse them instead of reading again); 0
            turns the cache off.

    Example:
        >>> config = AblationConfig(ablation_study=study, direction="min", name="Titanic-LOCO")  # doctest: +SKIP
    """

    ablation_study: AblationStudy
    ablator: Any = "loco"
    direction: str = "max"
    name: str = "no-name"
    description: str = ""
    optimization_key: str = "metric"
    hb_interval: float = 1.0
    es_policy: Union[str, Any, None] = None
    es_interval: int = 1
    es_min: int = 3
    es_grace_steps: int = 0
    es_margin: float = 0.25
    es_patience: int = 1
    num_executors: Optional[int] = None
    seed: Optional[int] = 0
    max_trial_retries: int = 2
    experiment_dir: str = "maggy_experiments"
    resume: bool = False
    repeats: Union[int, str] = 1
    max_trials: Optional[int] = None
    hb_timeout: float = 60.0
    preflight: bool = True
    tls: Optional[bool] = None
    verbose: bool = True
    alpha: float = 0.05
    min_effect: Optional[float] = None
    noise_runs: int = 0
    min_repeats: int = 3
    max_repeats: int = 10
    gpus_per_trial: Optional[int] = None
    cpus_per_trial: Optional[int] = None
    data_cache_mb: float = 1024.0

    def __post_init__(self):
        if not isinstance(self.ablation_study, AblationStudy):
            raise TypeError(
                f"ablation_study must be a maggy.ablation.AblationStudy, got {type(self.ablation_study).__name__}"
            )
        check_direction(self.direction)
        for field in ("name", "optimization_key", "experiment_dir"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{field} must be a non-empty str, got {value!r}")
        if any(sep in self.name for sep in "/\\") or self.name in (".", ".."):
            raise ValueError(f"name is used as a directory name and must not contain '/' or '\\', got {self.name!r}")
        _check_number("hb_interval", self.hb_interval, 0.001)
        _check_number("hb_timeout", self.hb_timeout, 0.1)
        _check_number("es_interval", self.es_interval, 1, integer=True)
        _check_number("es_min", self.es_min, 1, integer=True)
        _check_number("es_grace_steps", self.es_grace_steps, 0, integer=True)
        _check_number("es_margin", self.es_margin, 0)
        _check_number("es_patience", self.es_patience, 1, integer=True)
        _check_number("num_executors", self.num_executors, 1, integer=True, allow_none=True)
        _check_number("max_trial_retries", self.max_trial_retries, 0, integer=True)
        if self.tls is not None and not isinstance(self.tls, bool):
            raise ValueError(f"tls must be True, False or None (on when executors are remote), got {self.tls!r}")
        _check_number("max_trials", self.max_trials, 1, integer=True, allow_none=True)
        if self.repeats != "auto":
            try:
                _check_number("repeats", self.repeats, 1, integer=True)
            except ValueError:
                raise ValueError(f"repeats must be an int >= 1 or 'auto', got {self.repeats!r}") from None
        _check_number("min_repeats", self.min_repeats, 2, integer=True)
        _check_number("max_repeats", self.max_repeats, self.min_repeats, integer=True)
        _check_number("noise_runs", self.noise_runs, 0, integer=True)
        _check_number("min_effect", self.min_effect, 0, allow_none=True)
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be a number between 0 and 1 (exclusive), got {self.alpha!r}")
        if self.repeats == "auto" and self.noise_runs:
            raise ValueError("noise_runs is for single runs; repeats='auto' already repeats the base trial: drop noise_runs")
        _check_number("gpus_per_trial", self.gpus_per_trial, 1, integer=True, allow_none=True)
        _check_number("cpus_per_trial", self.cpus_per_trial, 1, integer=True, allow_none=True)
        _check_number("data_cache_mb", self.data_cache_mb, 0)
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f"seed must be an int or None, got {self.seed!r}")

    def judging(self) -> dict:
        """The options :func:`maggy.results.build_result` judges components with."""
        adaptive = self.repeats == "auto"
        return {
            "alpha": self.alpha,
            "min_effect": self.min_effect,
            "min_repeats": self.min_repeats if adaptive else None,
            "max_repeats": self.max_repeats if adaptive else None,
        }

    def to_dict(self) -> dict:
        """The JSON-serialisable part of the config (objects are shown by name)."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "ablation_study":
                continue
            if not isinstance(value, (str, int, float, bool, type(None))):
                value = getattr(value, "__name__", type(value).__name__)
            out[field.name] = value
        return out
