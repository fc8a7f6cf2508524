"""The data CLI: ``python -m pixelis_verl.data {synth,convert,validate,fuse,stats} ...``.

    synth     synthesise CoTA traces of the verifiable pixel tasks by running the tools
    convert   convert a local copy of a public dataset into a trace set (kept/dropped counts with reasons)
    validate  check every trace of a set (schema, tools, arguments, coordinates, answer, media; --execute
              re-runs the tools and compares the observations)
    fuse      mix trace sets by weight into deduplicated train/val splits, written as SFT and RL parquet
    stats     print what a set holds: kinds, tasks, tools, trace lengths, answer types

`--model` is a local model directory (its processor decides how images are shown) or `tiny:<family>` for the
locally built tiny models; `--tools` the tool YAML whose coordinate frame the traces use. See docs/data.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from pixelis_verl.paths import REPO_ROOT

DEFAULT_TOOLS = REPO_ROOT / "conf" / "tools" / "pixel_tools.yaml"


def _model_path(value: str) -> str:
    if value.startswith("tiny:"):
        from pixelis_verl.tiny.build import tiny_model_path

        return str(tiny_model_path(value.split(":", 1)[1]))
    return value


def _mix(value: str) -> tuple[tuple[str, float], ...]:
    from pixelis_verl.data.cota import KINDS

    pairs = [item.split("=") for item in value.split(",")]
    if any(len(p) != 2 or p[0] not in KINDS for p in pairs):
        raise argparse.ArgumentTypeError(f"--mix must look like golden=0.7,self_correction=0.2,trap=0.1; got {value}")
    return tuple((name, float(share)) for name, share in pairs)


def _source(value: str) -> tuple[Path, float]:
    path, _, weight = value.rpartition(":")
    try:
        return Path(path), float(weight)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--source must be DIR:WEIGHT; got {value}") from None


def _view_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model directory or tiny:<family>; its processor sizes images")
    parser.add_argument("--tools", type=Path, default=DEFAULT_TOOLS, help="tool YAML (coordinate frame, schemas)")
    parser.add_argument(
        "--max-pixels",
        type=int,
        required=True,
        help="the shown question image's area (px): the view the model trains and is evaluated at, its model "
        "group's pixelis.synth_data.shown_max_pixels: 1003520 for Qwen2.5-VL, 1048576 for Qwen3-VL (left to the "
        "processor, images would be shown at up to 12.8 MP, ~16k tokens each)",
    )


def _parser() -> argparse.ArgumentParser:
    from pixelis_verl.data.convert import CONVERTERS
    from pixelis_verl.data.synth.tasks import TASK_KINDS
    from pixelis_verl.data.synth.traces import DEFAULT_MIX

    parser = argparse.ArgumentParser(prog="python -m pixelis_verl.data", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    synth = commands.add_parser("synth", help="synthesise traces by running the tools")
    synth.add_argument("--out", type=Path, required=True, help="output trace set folder")
    synth.add_argument("--num", type=int, required=True)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--kinds", nargs="+", default=list(TASK_KINDS), choices=list(TASK_KINDS))
    synth.add_argument("--mix", type=_mix, default=tuple(DEFAULT_MIX.items()), help="variant shares")
    synth.add_argument("--workers", type=int, default=1, help="processes")
    _view_args(synth)
    convert = commands.add_parser("convert", help="convert a public dataset into a trace set")
    convert.add_argument("format", choices=sorted(CONVERTERS))
    convert.add_argument("input", type=Path, help="the local file (or folder) of the dataset")
    convert.add_argument("--out", type=Path, required=True)
    convert.add_argument("--media-root", type=Path, help="where the records' relative media paths resolve")
    convert.add_argument("--limit", type=int, help="convert at most this many records")
    _view_args(convert)
    validate = commands.add_parser("validate", help="check every trace of a set")
    validate.add_argument("set", type=Path)
    validate.add_argument("--tools", type=Path, default=DEFAULT_TOOLS)
    validate.add_argument("--execute", action="store_true", help="re-run the tools and compare observations")
    fuse = commands.add_parser("fuse", help="mix sets by weight into train/val SFT and RL parquet")
    fuse.add_argument("--source", type=_source, action="append", required=True, help="DIR:WEIGHT, repeatable")
    fuse.add_argument("--out", type=Path, required=True)
    fuse.add_argument("--val-fraction", type=float, default=0.1)
    fuse.add_argument(
        "--rl-fraction",
        type=float,
        default=0.3,
        help="share of the training questions kept for RL prompts instead of SFT traces (never both)",
    )
    fuse.add_argument("--total", type=int, help="traces in the fused set (default: as many as the shares allow)")
    fuse.add_argument("--seed", type=int, default=0)
    fuse.add_argument("--tools", type=Path, default=DEFAULT_TOOLS)
    stats = commands.add_parser("stats", help="print what a set holds")
    stats.add_argument("sets", type=Path, nargs="+")
    return parser


def _synth(args: argparse.Namespace) -> int:
    from pixelis_verl.data.cota import TraceSet
    from pixelis_verl.data.pipeline import view_for
    from pixelis_verl.data.synth.traces import SynthConfig, synthesize

    view = view_for(args.tools, _model_path(args.model), args.max_pixels)
    config = SynthConfig(args.tools, view, seed=args.seed, kinds=tuple(args.kinds), mix=args.mix)
    traces = synthesize(config, TraceSet(args.out), args.num, workers=args.workers)
    print(f"synth: wrote {len(traces)} traces to {args.out}; kinds {dict(Counter(t.kind for t in traces))}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from pixelis_verl.data.convert import convert_source
    from pixelis_verl.data.cota import TraceSet
    from pixelis_verl.data.pipeline import view_for
    from pixelis_verl.tools.session import load_tools

    out = TraceSet(args.out)
    view = view_for(args.tools, _model_path(args.model), args.max_pixels)
    kwargs = {"view": view, "tools": load_tools(args.tools, out.root), "media_root": args.media_root}
    report = convert_source(args.format, args.input, out, kwargs, limit=args.limit)
    print(f"convert {args.format}: {report.summary()}; traces in {out.path}")
    return 0 if report.kept else 1


def _validate(args: argparse.Namespace) -> int:
    from pixelis_verl.data.cota import Trace, TraceError, TraceSet, validate_trace
    from pixelis_verl.data.replay import replay_mismatches
    from pixelis_verl.tools.session import load_tools, tool_schemas

    traces = TraceSet(args.set)
    tools = load_tools(args.tools, traces.root)
    schemas = tool_schemas(tools)
    codes: Counter[str] = Counter()
    valid = 0
    for number, record in traces.records():
        try:
            if isinstance(record, Exception):
                raise record
            trace = Trace.from_dict(record)
            errors = validate_trace(trace, traces.root, schemas)
            if not errors and args.execute:
                errors = replay_mismatches(trace, traces.root, tools)
        except TraceError as exc:
            errors = [exc]
        for error in errors:
            codes[error.code] += 1
            print(f"{traces.path}:{number}: {error}", file=sys.stderr)
        valid += not errors
    print(f"validate: {valid} valid, {sum(codes.values())} problem(s): {dict(codes) or 'none'}")
    return 0 if not codes else 1


def _fuse(args: argparse.Namespace) -> int:
    from pixelis_verl.data.cota import TraceSet
    from pixelis_verl.data.fuse import fuse
    from pixelis_verl.data.parquet import write_rl_parquet, write_sft_parquet
    from pixelis_verl.tools.session import load_tools, tool_schemas

    sources = [(TraceSet(path), weight) for path, weight in args.source]
    fused = fuse(sources, args.val_fraction, seed=args.seed, total=args.total, rl_fraction=args.rl_fraction)
    schemas = tool_schemas(load_tools(args.tools, args.out))
    write_sft_parquet(fused.train, schemas, args.out / "sft_train.parquet")
    write_rl_parquet(fused.rl_train, args.out / "rl_train.parquet", "train")
    write_sft_parquet(fused.val, schemas, args.out / "sft_val.parquet")
    write_rl_parquet(fused.val, args.out / "rl_val.parquet", "val")
    print(f"fuse: {fused.report.summary()}; parquet in {args.out}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from pixelis_verl.data.cota import TraceSet
    from pixelis_verl.data.stats import set_stats

    for path in args.sets:
        print(json.dumps({"set": str(path), **set_stats(TraceSet(path))}, indent=2))
    return 0


COMMANDS = {"synth": _synth, "convert": _convert, "validate": _validate, "fuse": _fuse, "stats": _stats}


def main(argv: list[str] | None = None) -> int:
    from pixelis_verl.data.cota import TraceError

    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return COMMANDS[args.command](args)
    except (TraceError, ValueError, FileNotFoundError) as exc:
        print(f"pixelis_verl.data {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
