"""``lagom()``: run an ablation study on Spark and return what each component is worth."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
import time
from typing import Any, Callable, NamedTuple, Optional

from maggy import layout
from maggy import results as _results
from maggy.ablation.ablator import ABLATORS, AbstractAblator
from maggy.config import AblationConfig
from maggy.core.data.plan import source_for, staged, stages_with_spark
from maggy.core.driver import Driver
from maggy.core.journal import read_journal
from maggy.core.progress import Progress
from maggy.core.scheduler import TrialScheduler
from maggy.core.launch import make_launch
from maggy.core.shipping import ship_by_value
from maggy.core.spark import decide_slots, get_session
from maggy.core.trial_builder import accepts_parameter
from maggy.core.trial_builder import experiment_rules
from maggy.core.validation import check_picklable, check_study, check_train_fn, preflight
from maggy.earlystop import AbstractEarlyStop, make_policy
from maggy.trial import TrialStatus

__all__ = ["lagom"]

#: Retries Spark may make of one task of an embedded session (16 attempts in all).
_EMBEDDED_TASK_RETRIES = 15


class _Plan(NamedTuple):
    """What lagom() settles before any Spark job starts."""

    ablator: AbstractAblator
    specs: list[dict]
    data: Any  # the training data as a core.data.DataSource (schema and files, no rows), or None
    policy: AbstractEarlyStop
    rules: dict  # the repair rules the experiment carries to its executors


def lagom(
    train_fn: Optional[Callable] = None,
    config: Optional[AblationConfig] = None,
    *,
    experiment_type: str = "ablation",
    map_fun: Optional[Callable] = None,
    spark: Any = None,
    **kwargs: Any,
) -> dict:
    """Runs an ablation study and returns its result.

    *lagom* is Swedish for "just the right amount".

    Args:
        train_fn: trains one trial. It may take any of ``model_function``,
            ``dataset_function`` and ``reporter``, and returns the final metric (a number,
            a one-element tensor, or a dict holding ``optimization_key``).
        config: an :class:`~maggy.config.AblationConfig`; or pass its fields as keywords
            (``ablation_study=``, ``ablator=``, ``name=``, ``direction=``, ...).
        experiment_type: ``"ablation"`` (the only type this version runs).
        map_fun: alias of ``train_fn`` (the name older Maggy code used).
        spark: the SparkSession to use; by default the active one, else an embedded
            ``local[N]`` session.
        **kwargs: ``AblationConfig`` fields, when ``config`` is not given.

    Returns:
        A dict with ``best_config``, ``best_val``, ``worst_config``, ``worst_val``, ``avg``,
        ``num_trials``, ``early_stopped``, ``failed``, ``duration``, ``trials`` (a pandas
        DataFrame, one row per trial), ``components`` and ``run_dir``.

    Raises:
        TypeError, ValueError, AblationError: bad input, before any Spark job starts.

    Example:
        >>> result = experiment.lagom(train_fn=train, experiment_type="ablation",
        ...                           ablation_study=study, ablator="loco",
        ...                           name="Titanic-LOCO", direction="min")  # doctest: +SKIP
    """
    started = time.time()
    train_fn, config = _resolve_arguments(train_fn, config, map_fun, experiment_type, kwargs)
    # The user's helper modules travel with the tasks where executors could not import them.
    with ship_by_value(_user_code(train_fn, config.ablation_study).values()):
        return _lagom(train_fn, config, spark, started)


def _lagom(train_fn: Callable, config: AblationConfig, spark: Any, started: float) -> dict:
    plan = _plan(train_fn, config)
    ablator, specs = plan.ablator, plan.specs
    run = _Run(*_find_run(config, specs), title=_title(ablator), analysis=ablator.analysis(), started=started)
    if ablator.adaptive and run.earlier:
        run.earlier = _replay(ablator, specs, run.earlier, run.dir)
    done = {r["trial_id"] for r in run.earlier}
    todo = [s for s in specs if s["trial_id"] not in done]
    if not todo:
        _prepare(config, plan, run)
        return _conclude(run.earlier, config, plan, run)
    return _run(train_fn, config, plan, todo, run, spark)


def _conclude(records: list[dict], config: AblationConfig, plan: _Plan, run: _Run) -> dict:
    """The result of all ``records``: the ablator's last word, config.json's end time, the report."""
    plan.ablator.finalize_experiment(records)
    _write_config(run.dir, config, plan.specs, start_time=run.started, end_time=time.time(), title=run.title,
                  analysis=run.analysis)
    return _report(records, config, run.dir, time.time() - run.started, run.title, run.analysis)


@dataclasses.dataclass
class _Run:
    """The run's directory (``None`` until it is made), the records it has from earlier, and how it is labelled."""

    dir: Optional[str]
    earlier: list[dict]
    title: str
    analysis: Optional[dict]
    started: float


def _prepare(config: AblationConfig, plan: _Plan, run: _Run) -> None:
    """What the trials need before the first one runs: pre-flight, then the run's directory.

    Runs while Spark's workers start (the job is submitted first); raises what pre-flight finds
    before anything is written.
    """
    if config.preflight:
        preflight(config.ablation_study, plan.specs, plan.data.schema_only() if plan.data is not None else None,
                  rules=plan.rules)
    if run.dir is None:
        run.dir = layout.new_run(layout.experiment_path(config.experiment_dir, config.name))
    _write_config(run.dir, config, plan.specs, start_time=run.started, title=run.title, analysis=run.analysis)
    if config.verbose:
        resumed = f", {len(run.earlier)} already done in {run.dir}" if run.earlier else ""
        print(f"maggy: experiment {config.name!r}: {len(plan.specs)} trials{resumed}")


def _resolve_arguments(train_fn, config, map_fun, experiment_type, kwargs) -> tuple[Callable, AblationConfig]:
    """The train_fn and config from lagom()'s several calling conventions."""
    if train_fn is not None and map_fun is not None:
        raise TypeError("pass train_fn= or map_fun= (an alias), not both")
    train_fn = train_fn if train_fn is not None else map_fun
    if isinstance(train_fn, AblationConfig) and config is None:
        train_fn, config = None, train_fn
    if experiment_type != "ablation":
        raise ValueError(f"experiment_type must be 'ablation', got {experiment_type!r}")
    return train_fn, _make_config(config, kwargs)


def _plan(train_fn: Any, config: AblationConfig) -> _Plan:
    """Checks the arguments and lists the trials (pre-flight, which builds models, comes later: :func:`_prepare`)."""
    train_args = check_train_fn(train_fn)
    study = config.ablation_study
    ablator = _make_ablator(config)
    if config.noise_runs and not ablator.reads_noise_runs:
        raise ValueError(
            f"noise_runs is run by ablator='loco' only; {type(ablator).__name__} would ignore it. Drop "
            "noise_runs, or give every trial repeats (repeats=3 or 'auto') for a noise estimate")
    data = source_for(study, config.data_cache_mb)  # the executors read the rows
    check_study(study, train_args, data)
    check_picklable(_user_code(train_fn, study))
    # A bad policy fails here, not after Spark started.
    es_policy = config.es_policy if config.es_policy is not None else ablator.default_es_policy
    policy = make_policy(es_policy, config.es_min, grace_steps=config.es_grace_steps,
                         margin=config.es_margin, patience=config.es_patience)
    ablator.configure(config)
    ablator.initialize()
    specs = []
    while (spec := ablator.get_trial()) is not None:
        specs.append(spec)
    return _Plan(ablator, specs, data, policy, experiment_rules(study))


def _user_code(train_fn: Any, study) -> dict[str, Any]:
    """What of the user's the executors unpickle, by description."""
    return {
        "train_fn": train_fn,
        "the base model generator": study.model.base_model_generator,
        "the dataset generator": study.dataset_generator,
        **{f"custom model generator {n!r}": g for n, g in study.model.custom_model_generators.items()},
    }


def _ready_reporting(after: threading.Event) -> Callable[[], None]:
    """Loads what the report needs (matplotlib, scipy's distributions) on a thread, once ``after`` is set.

    The first report of a process would otherwise spend ~0.4 s on matplotlib and ~0.1-0.5 s
    on scipy after the last trial, while the driver is mostly idle as the trials run. It
    waits for the first trial to start (``after``), not to compete for the CPU with Spark
    starting its workers. Returns a function that waits for the loading to finish (it
    starts it now if ``after`` never came): matplotlib must not draw on two threads at once.
    """
    if all(m in sys.modules for m in ("matplotlib.figure", "scipy.special")):
        return lambda: None
    now = threading.Event()

    def load() -> None:
        while not (after.wait(0.1) or now.is_set()):
            pass
        _results.load_matplotlib()
        try:
            import scipy.special  # noqa: F401  (the statistics of every components table)
        except ImportError:  # the report says what is missing
            pass

    thread = threading.Thread(target=load, name="maggy-ready-reporting", daemon=True)
    thread.start()

    def finish() -> None:
        now.set()
        thread.join()

    return finish


def _run(train_fn, config: AblationConfig, plan: _Plan, todo: list[dict], run: _Run, spark: Any) -> dict:
    """Runs the trials in ``todo`` on Spark (``run.earlier``: those a resumed run has); returns the result.

    The Spark job is submitted before pre-flight and the run's directory (:func:`_prepare`),
    so Spark's Python workers start meanwhile; they wait for the driver to let them in.
    """
    if spark is None:
        # One task runs many trials, so Spark may retry it more often than any one trial
        # is re-run; max_trial_retries is what bounds each trial.
        task_retries = max(_EMBEDDED_TASK_RETRIES, config.max_trial_retries)
        spark, _ = get_session(config.num_executors or min(len(todo), os.cpu_count() or 1), task_retries)
    launch = make_launch(spark, config.gpus_per_trial, config.cpus_per_trial)
    launch.check()  # what this session cannot do fails here, before any trial
    slots = decide_slots(config.num_executors, launch.slots(len(todo)), len(todo))
    earlier = run.earlier
    scheduler = TrialScheduler(
        todo,
        policy=plan.policy,
        direction=config.direction,
        es_interval=config.es_interval,
        max_trial_retries=config.max_trial_retries,
        finished_histories=[[v for _, v in r.get("history", [])] for r in earlier if r["status"] == TrialStatus.FINISHED],
        base_histories={r.get("repeat", 0): [v for _, v in r.get("history", [])] for r in earlier if r.get("index") == 0},
        # The report is written while the tasks wait, not while Spark ends the job.
        hold_executors=plan.ablator.adaptive or launch.ends_in_background,
    )
    driver = Driver(scheduler, train_fn, config.ablation_study, optimization_key=config.optimization_key,
                    hb_interval=config.hb_interval, hb_timeout=config.hb_timeout, tls=config.tls,
                    repair_rules=plan.rules)
    reporting_ready = _ready_reporting(after=driver.first_trial_started)

    def prepare() -> Any:
        _prepare(config, plan, run)
        return staged(plan.data, config.ablation_study, run.dir)

    # A Spark DataFrame is staged by a Spark job, which would wait forever for the slots the
    # trials' tasks hold while they wait for pre-flight: such a run prepares first.
    data = prepare() if stages_with_spark(plan.data, config.ablation_study) else _NOT_YET
    with driver.started(launch, slots):
        if data is _NOT_YET:
            data = prepare()
        tensorboard = layout.tensorboard_path(run.dir)
        records = driver.run(
            run.dir,
            data=data,
            progress=Progress(len(plan.specs), config.direction, enabled=config.verbose, done=len(earlier)),
            on_record=lambda record: _results.write_tensorboard(record, tensorboard),
            tensorboard_dir=tensorboard,
            more_trials=_more_trials(plan, earlier) if plan.ablator.adaptive else None,
        )
        reporting_ready()
        # Reported while the tasks wait for their last answer: on a classic session Spark
        # ends the job after lagom() returns (maggy.core.job_end).
        return _conclude(earlier + records, config, plan, run)


#: The training data before the run is prepared (``None`` is a study without any).
_NOT_YET = object()


def _report(records: list[dict], config: AblationConfig, run_dir: str, duration: float, title: str,
            analysis: Optional[dict] = None) -> dict:
    """Builds the result, writes result.json and the plots, and prints the summary."""
    result = _results.add_analysis(
        _results.build_result(records, config.direction, duration, judging=config.judging()), analysis)
    result["run_dir"] = run_dir
    _results.save_result(result, layout.result_path(run_dir))
    plot = _results.plot_effects(result, layout.plot_path(run_dir))
    if "interactions" in result:
        _results.plot_interactions(result, layout.interactions_plot_path(run_dir))
    if config.verbose:
        print(_results.format_summary(result, title=title))
        print(f"maggy: results in {run_dir}")
        _results.show_plot(plot)
    return result


def _replay(ablator: AbstractAblator, specs: list[dict], earlier: list[dict], run_dir: str) -> list[dict]:
    """Rebuilds an adaptive ablator's state from a resumed run's journal.

    Hands the ablator the journaled records of the trials it knows, adding what it returns
    to ``specs`` (in place), until it returns nothing: the trials it had scheduled before
    the run stopped are scheduled again and those with a record are not rerun.
    Returns the journaled records of every trial in ``specs``.
    """
    journaled = read_journal(layout.journal_path(run_dir))
    while True:
        known = {s["trial_id"] for s in specs}
        earlier = [r for r in journaled if r.get("trial_id") in known]
        added = ablator.more_trials(earlier)
        if not added:
            return earlier
        specs += added


def _more_trials(plan: _Plan, earlier: list[dict]) -> Callable[[list], list]:
    """The driver's hook: the ablator's next trials given every record so far."""

    def more(records: list) -> list:
        added = plan.ablator.more_trials(earlier + records)
        plan.specs.extend(added)  # config.json lists them at the end
        return added

    return more


def _make_config(config: Optional[AblationConfig], kwargs: dict) -> AblationConfig:
    if config is not None:
        if kwargs:
            raise TypeError(f"pass either an AblationConfig or its fields as keywords, not both (got {sorted(kwargs)})")
        if not isinstance(config, AblationConfig):
            raise TypeError(f"config must be a maggy.config.AblationConfig, got {type(config).__name__}")
        return config
    if "ablation_study" not in kwargs:
        raise TypeError("lagom() needs ablation_study= (or an AblationConfig as its second argument)")
    fields = set(AblationConfig.__dataclass_fields__)
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        raise TypeError(f"lagom() got unknown argument(s) {unknown}; accepted: {sorted(fields)}")
    return AblationConfig(**kwargs)


def _make_ablator(config: AblationConfig) -> AbstractAblator:
    ablator = config.ablator
    if isinstance(ablator, str):
        if ablator.lower() not in ABLATORS:
            raise ValueError(f"unknown ablator {ablator!r}; accepted: {sorted(ABLATORS)}, an AbstractAblator subclass or instance")
        ablator = ABLATORS[ablator.lower()]
    if isinstance(ablator, type) and issubclass(ablator, AbstractAblator):
        extra = {}
        if config.max_trials is not None:
            if not accepts_parameter(ablator, "max_trials"):
                raise ValueError(f"max_trials is the budget of ablator='shapley'; {ablator.__name__} takes none, "
                                 f"got max_trials={config.max_trials!r}")
            extra["max_trials"] = config.max_trials
        return ablator(config.ablation_study, repeats=config.repeats, seed=config.seed, **extra)
    if isinstance(ablator, AbstractAblator):
        return ablator
    raise ValueError(f"ablator must be a name in {sorted(ABLATORS)}, an AbstractAblator subclass or instance, got {ablator!r}")


def _find_run(config: AblationConfig, specs: list[dict]) -> tuple[Optional[str], list[dict]]:
    """The run to resume and its earlier records, or ``(None, [])`` for a new run (made by :func:`_prepare`).

    Writes nothing: a run whose pre-flight fails leaves no folder behind.
    """
    run_dir = layout.latest_run(layout.experiment_path(config.experiment_dir, config.name)) if config.resume else None
    if run_dir is None:
        return None, []
    known = {s["trial_id"] for s in specs}
    journal = layout.journal_path(run_dir)
    earlier = [r for r in read_journal(journal) if r.get("trial_id") in known] if os.path.exists(journal) else []
    return run_dir, earlier


def _title(ablator: AbstractAblator) -> str:
    return ablator.title or type(ablator).__name__


def _write_config(run_dir: str, config: AblationConfig, specs: list[dict], **extra) -> None:
    """Writes config.json: the config, the trial specs, the summary title and the run's start (and end) time."""
    content = {**config.to_dict(), "study": repr(config.ablation_study), **extra, "trials": specs}
    with open(layout.config_path(run_dir), "w", encoding="utf-8") as f:
        json.dump(content, f, indent=2, default=str)
