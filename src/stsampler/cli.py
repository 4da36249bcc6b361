"""The ``stsampler`` command: thin wrappers that parse arguments and call the library.

Every subcommand imports its dependencies lazily, so ``stsampler --help`` is instant. Errors the
library raises on bad input (:class:`stsampler.errors.StsamplerError`) are printed as one message,
without a traceback, and the command exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Callable, Sequence

from stsampler.errors import StsamplerError


def _cmd_demo(args: argparse.Namespace) -> None:
    from stsampler.demo import DemoConfig, run_demo

    demo = DemoConfig.quick() if args.quick else DemoConfig()
    if args.seeds is not None:
        demo.seeds = args.seeds
    words = ["stsampler", "demo", "--out", args.out, *(["--quick"] if args.quick else []), "--seeds", str(demo.seeds)]
    words += ["--workers", str(args.workers), *side_by_side_words(args.jobs, args.threads)]
    run_demo(
        demo, Path(args.out), workers=args.workers, command=shlex.join(words), jobs=args.jobs, threads=args.threads
    )


def _variants(specs: Sequence[Sequence[str]]) -> dict[str, list[str]]:
    """``--variant NAME KEY=VALUE ...`` options as ``name -> overrides``, in order.

    Raises:
        ConfigError: a name repeats or cannot be a folder name.
    """
    from stsampler.errors import ConfigError

    variants: dict[str, list[str]] = {}
    for name, *overrides in specs:
        if name in variants or not name or "/" in name or name.startswith(".") or "=" in name:
            raise ConfigError(
                f"--variant {name!r}: each variant needs its own name (a folder name, no '=' or '/') "
                "before its KEY=VALUE overrides"
            )
        variants[name] = overrides
    return variants


def _cmd_compare(args: argparse.Namespace) -> None:
    from stsampler.config import load_config
    from stsampler.engine.report import REPORT, compare_and_report

    variants = _variants(args.variant)
    base = load_config(args.config, args.overrides)
    episodes = args.episodes or base.eval.episodes
    words = ["stsampler", "compare", args.config, *args.overrides]
    for name, overrides in variants.items():
        words += ["--variant", name, *overrides]
    words += ["--seeds", str(args.seeds), "--episodes", str(episodes), "--out", args.out]
    words += side_by_side_words(args.jobs, args.threads)
    command = shlex.join(words)
    out = Path(args.out)
    _, table = compare_and_report(
        base, variants, out, episodes, args.seeds, command, pictures=args.pictures, jobs=args.jobs,
        threads=args.threads,
    )
    print(table)
    print(f"wrote {out / 'compare.md'}, {out / 'compare.json'} and {out / REPORT}")
    print(f"regenerate with: {command}")


def add_side_by_side_options(parser: argparse.ArgumentParser) -> None:
    """``--jobs`` and ``--threads``: how many training runs go side by side, with how many threads each."""
    parser.add_argument(
        "--jobs", type=int, default=1,
        help="runs trained and tested side by side, each in its own process (default: %(default)s)",
    )
    parser.add_argument(
        "--threads", type=int, default=None,
        help="intra-op threads per run (default: the cores shared out among the jobs); a CPU run's numbers "
        "depend slightly on it",
    )


def side_by_side_words(jobs: int, threads: int | None) -> list[str]:
    """The ``--jobs``/``--threads`` words that reproduce a comparison's runs, the thread count resolved
    (:func:`stsampler.engine.compare.side_by_side_threads`); none for one job on the default threads."""
    from stsampler.engine.compare import side_by_side_threads

    if jobs == 1 and threads is None:
        return []
    return ["--jobs", str(jobs), "--threads", str(side_by_side_threads(jobs, threads))]


def _cmd_report(args: argparse.Namespace) -> None:
    from stsampler.engine.report import build_report

    print(build_report(Path(args.dir), pictures=args.pictures))


def _cmd_synth(args: argparse.Namespace) -> None:
    from stsampler.data.synthetic import SynthConfig, generate_dataset

    optional = {"fps": args.fps, "distractors": args.distractors}
    if args.event_fraction is not None:
        optional["event_fraction"] = tuple(args.event_fraction)
    if args.event_area is not None:
        optional["event_area_min"], optional["event_area"] = args.event_area
    config = SynthConfig(
        num_classes=args.classes,
        videos_per_class=args.videos_per_class,
        num_frames=args.frames,
        height=args.size,
        width=args.size,
        seed=args.seed,
        **{key: value for key, value in optional.items() if value is not None},
    )
    out = generate_dataset(Path(args.out), config, workers=args.workers)
    print(f"wrote {config.num_classes * config.videos_per_class} videos, split lists and metadata.json under {out}")


def _cmd_splits_fetch(args: argparse.Namespace) -> None:
    from stsampler.data.splits import fetch_splits

    for path in fetch_splits(args.name, Path(args.dest), overwrite=args.overwrite):
        print(f"ok  {path}")


def _cmd_splits_check(args: argparse.Namespace) -> None:
    """Print the JSON report; any problem (missing or broken videos beyond the tolerance, a bad
    list, too few classes or videos per class) then raises, so the command exits 2."""
    from stsampler.data.splits import BENCHMARKS, check_problems, check_split_dir, split_dir_for
    from stsampler.errors import DatasetError

    split_dir = split_dir_for(args.name, Path(args.splits_root) if args.splits_root else None)
    expected = BENCHMARKS[args.name].classes if args.name in BENCHMARKS else None
    report = check_split_dir(split_dir, Path(args.data_root), expected, args.way, args.shot, args.query)
    print(json.dumps(report, indent=2))
    problems = check_problems(report, args.max_bad_fraction, args.way)
    if problems:
        raise DatasetError(f"{len(problems)} problem(s): " + " | ".join(problems))


def _cmd_extract(args: argparse.Namespace) -> None:
    from stsampler.data.extract import extract_frames

    report = extract_frames(Path(args.src), Path(args.dst), short_side=args.short_side, workers=args.workers)
    print(f"extracted {report.done}, already done {report.skipped}, failed {len(report.failed)}")
    for _path, message in report.failed:
        print(f"failed: {message}", file=sys.stderr)


def _cmd_configs(args: argparse.Namespace) -> None:
    from stsampler.config import list_recipes

    recipes = list_recipes()
    width = max(map(len, recipes))
    for name, summary in recipes.items():
        print(f"{name:<{width}}  {summary}")


def _warn(line: str | None) -> None:
    """Print a warning or note line on stderr (nothing for None)."""
    if line:
        print(line, file=sys.stderr)


def _cmd_train(args: argparse.Namespace) -> None:
    from stsampler.config import load_config
    from stsampler.engine.substitutions import substitution_warning
    from stsampler.engine.train import episode_rounding_note, train

    config = load_config(Path(args.config), args.overrides)
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / config.name
    main_rank = os.environ.get("RANK", "0") == "0"
    if main_rank:
        _warn(episode_rounding_note(config.train))
    results = train(config, run_dir, resume=args.resume)
    if main_rank:
        summary = {k: v for k, v in results.items() if k != "train_history"}
        print(json.dumps(summary, indent=2))
        _warn(substitution_warning(results["num_substitutions"], str(run_dir / "results.json")))


def _cmd_eval(args: argparse.Namespace) -> None:
    from stsampler.engine.evaluate import evaluate_run
    from stsampler.engine.substitutions import substitution_warning
    from stsampler.io import atomic_write_json, check_writable

    out = check_writable(args.out, "eval --out") if args.out else None
    results = evaluate_run(
        Path(args.checkpoint),
        split=args.split,
        episodes=args.episodes,
        way=args.way,
        shot=args.shot,
        query=args.query,
        seed=args.seed,
        episodes_file=Path(args.episodes_file) if args.episodes_file else None,
        overrides=args.overrides,
    )
    summary = {k: v for k, v in results.items() if k not in ("per_episode", "per_class")}
    print(json.dumps(summary, indent=2))
    print(
        f"{results['split']}: {results['accuracy']:.2f} +- {results['ci95']:.2f}% over {results['num_episodes']} "
        f"episodes, {results['way']}-way {results['shot']}-shot, {results['query']} query per class"
    )
    _warn(substitution_warning(results["num_substitutions"], str(out) if out else "the summary above"))
    if out is not None:
        atomic_write_json(out, results)


def _cmd_show(args: argparse.Namespace) -> None:
    from stsampler.viz import show

    written = show(
        Path(args.run),
        [Path(v) for v in args.videos],
        Path(args.out),
        html=args.html,
        support_dir=Path(args.support) if args.support else None,
    )
    for path in written:
        print(path)


def _cmd_predict(args: argparse.Namespace) -> None:
    from stsampler.data.folders import collect_queries
    from stsampler.engine.distributed import resolve_device
    from stsampler.engine.predict import PREDICTION_SUFFIXES, Predictor, write_predictions
    from stsampler.io import check_writable

    if args.out:
        check_writable(args.out, "predict --out", suffixes=PREDICTION_SUFFIXES)
    device = resolve_device(args.device, "--device")
    predictor = Predictor.from_checkpoint(Path(args.checkpoint), device=device)
    predictor.set_support(Path(args.support))
    predictions = predictor.predict(collect_queries(Path(args.query)))
    for p in predictions:
        best = p.probabilities[p.label]
        print(f"{p.path}\t{p.label}\t{best:.3f}")
    if args.out:
        write_predictions(predictions, Path(args.out))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``stsampler`` command."""
    parser = argparse.ArgumentParser(
        prog="stsampler",
        description="Task-adaptive spatial-temporal video sampler for few-shot action recognition.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], None], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    p = add("demo", _cmd_demo, "Synthetic actions: train uniform frames vs the learned sampler, compare, draw.")
    p.add_argument("--out", default="stsampler_demo", help="output folder (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="a tiny configuration that runs in seconds")
    p.add_argument(
        "--workers", type=int, default=0,
        help=(
            "data-loading processes; on a 2-core machine decoding in the main process is fastest "
            "(default: %(default)s)"
        ),
    )
    p.add_argument(
        "--seeds", type=int, default=None,
        help="training seeds per model; the table gives their spread (default: 2, with --quick 1)",
    )
    add_side_by_side_options(p)

    p = add(
        "compare", _cmd_compare,
        "Train variants of a recipe over several seeds, test them on the same episodes, report paired differences.",
    )
    p.add_argument("config", help="a shipped recipe's name (e.g. synthetic/sampler) or a YAML file")
    p.add_argument(
        "overrides", nargs="*", help="key=value overrides of every variant (give them before the first --variant)"
    )
    p.add_argument(
        "--variant", nargs="+", action="append", required=True, metavar=("NAME", "KEY=VALUE"),
        help=(
            "a variant: its name, then its key=value overrides; repeat for each variant "
            "(the first is the baseline)"
        ),
    )
    p.add_argument(
        "--seeds", type=int, default=1, help="training seeds per variant, train.seed 0..S-1 (default: %(default)s)"
    )
    p.add_argument("--episodes", type=int, help="fixed test episodes (default: the recipe's eval.episodes)")
    p.add_argument("--out", required=True, help="output folder: runs, compare.md, compare.json, report.html")
    p.add_argument(
        "--pictures", type=int, default=3, help="test videos drawn per learned sampler (default: %(default)s)"
    )
    add_side_by_side_options(p)

    p = add("report", _cmd_report, "Rebuild a comparison's report.html from its finished runs (no training).")
    p.add_argument("dir", help="the --out folder of `stsampler compare`")
    p.add_argument(
        "--pictures", type=int, default=3, help="test videos drawn per learned sampler (default: %(default)s)"
    )

    p = add("synth", _cmd_synth, "Write a synthetic action dataset (H.264 mp4, split lists, metadata).")
    p.add_argument("out", help="output folder")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--videos-per-class", type=int, default=20)
    p.add_argument("--frames", type=int, default=64, help="frames per video")
    p.add_argument("--size", type=int, default=112, help="frame width and height in pixels")
    p.add_argument("--fps", type=int, help="frames per second (default 16)")
    p.add_argument(
        "--event-fraction", type=float, nargs=2, metavar=("MIN", "MAX"),
        help="event length as a fraction of the video, drawn per video (default 0.1 0.2)",
    )
    p.add_argument(
        "--event-area", type=float, nargs=2, metavar=("MIN", "MAX"),
        help="fraction of the frame the event object's box covers at full size, drawn per video; the "
        "box sides must differ by two pixels or more (default: boxes of at most 0.1, the object's "
        "half-size 70-100%% of the largest)",
    )
    p.add_argument("--distractors", type=int, help="distractor objects per video (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)

    splits = sub.add_parser("splits", help="Download or check the benchmarks' few-shot split lists.")
    splits_sub = splits.add_subparsers(dest="splits_command", required=True, metavar="ACTION")
    p = splits_sub.add_parser("fetch", help="Download a benchmark's lists and verify their checksums.")
    p.set_defaults(handler=_cmd_splits_fetch)
    p.add_argument("name", help="benchmark name, e.g. kinetics100, ssv2-full, ucf101")
    p.add_argument("dest", help="folder to write trainlist03.txt, vallist03.txt, testlist03.txt into")
    p.add_argument("--overwrite", action="store_true")
    p = splits_sub.add_parser(
        "check",
        help="Open every listed video (headers and frame count, no decoding); report missing and broken "
        "ones, duplicated or leaked lines, classes too small; exit 2 on any problem.",
    )
    p.set_defaults(handler=_cmd_splits_check)
    p.add_argument("name", help="benchmark name or a folder holding the three lists")
    p.add_argument("data_root", help="folder holding <class>/<video id>.<ext> or frame folders")
    p.add_argument("--splits-root", help="where fetched lists live (default: ~/.cache/stsampler/splits)")
    p.add_argument(
        "--max-bad-fraction", type=float, default=0.0,
        help="tolerate up to this fraction of missing or broken videos per split (default: %(default)s)",
    )
    p.add_argument("--way", type=int, default=2, help="classes an episode needs (default: %(default)s)")
    p.add_argument("--shot", type=int, default=1, help="support videos per class (default: %(default)s)")
    p.add_argument("--query", type=int, default=1, help="query videos per class (default: %(default)s)")

    p = add("extract", _cmd_extract, "Convert videos to resized JPEG frame folders (parallel, resumable).")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--short-side", type=int, default=256)
    p.add_argument("--workers", type=int, default=2)

    add("configs", _cmd_configs, "List the recipes shipped with stsampler, one line each.")

    p = add("train", _cmd_train, "Episodic training from a YAML recipe (torchrun for several GPUs).")
    p.add_argument(
        "config",
        help="a shipped recipe's name (e.g. ucf101/protonet_sampler, see `stsampler configs`) or a YAML file",
    )
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.shot=5 sampler.kind=uniform")
    p.add_argument("--run-dir", help="output folder (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")

    p = add("eval", _cmd_eval, "Evaluate a run on fixed seeded episodes: accuracy with a 95%% interval.")
    p.add_argument("checkpoint", help="run folder or checkpoint file")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the run's config (e.g. data.data_root=...)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--episodes", type=int, help="episodes to draw (default: the run's eval.episodes)")
    p.add_argument("--way", type=int, help="N classes per episode (default: the run's eval.way, else train.way)")
    p.add_argument(
        "--shot", type=int, help="K support videos per class (default: the run's eval.shot, else train.shot)"
    )
    p.add_argument("--query", type=int, help="query videos per class (default: the run's eval.query)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episodes-file", help="JSON list of episodes: reused if present, written if not")
    p.add_argument("--out", help="write the full results as JSON here")

    p = add("show", _cmd_show, "Draw what the sampler sees: scores, selection, saliency, amplified frames.")
    p.add_argument("run", help="run folder or checkpoint")
    p.add_argument("videos", nargs="+")
    p.add_argument("--out", required=True, help="folder for the PNGs")
    p.add_argument("--html", action="store_true", help="also write index.html gathering the pictures")
    p.add_argument("--support", help="support folder (one sub-folder per action) to adapt the sampler to")

    p = add("predict", _cmd_predict, "Recognise actions in your videos from a few examples per action.")
    p.add_argument("checkpoint", help="run folder or checkpoint")
    p.add_argument("--support", required=True, help="folder with one sub-folder of 1..K example videos per action")
    p.add_argument("--query", required=True, help="a video or a folder of videos to classify")
    p.add_argument("--out", help="write predictions to this .json or .csv file")
    p.add_argument("--device", default="cpu")
    return parser


def _is_option(word: str) -> bool:
    """Whether a leftover command-line word is an option (``-x``, ``--flag``) rather than a KEY=VALUE override."""
    return word.startswith("-") or "=" not in word


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``stsampler`` console script."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # KEY=VALUE overrides may also follow the options (`stsampler eval RUN --episodes 100 data.workers=0`).
    # Not for compare, where one after a --variant would be ambiguous: that variant's, or every variant's?
    stray = [a for a in extra if args.command == "compare" or not hasattr(args, "overrides") or _is_option(a)]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    try:
        args.handler(args)
    except StsamplerError as error:
        print(f"stsampler {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
