"""The ``retalk eval`` subcommand: :func:`add_eval_parser` adds it, :func:`run_eval` runs it.

Wiring (in ``retalk/cli.py``)::

    from retalk.evaluate.cli_eval import add_eval_parser, run_eval
    add_eval_parser(sub, [common])           # in build_parser()
    if args.command == "eval":               # in main()
        return run_eval(args)
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from retalk import cli_flags as flags
from retalk.errors import EXIT_FAILED_CLIPS, EXIT_OK

EPILOG = """\
examples:
  retalk eval --dataset clips/ --engine builtin --out runs/builtin
  retalk eval --dataset lrs2:/data/mvlrs_v1 --engine wav2lip --protocol unpaired --subset 50 --out runs/lrs2
  retalk eval --dataset hdtf:/data/HDTF --engine builtin --out runs/hdtf
  retalk eval --dataset clips.csv --engine wav2lip --protocol unpaired --checkpoints weights/ --out runs/w2l
  retalk eval --dataset clips/ --engine builtin --out runs/b --ray auto

datasets (--dataset LAYOUT:PATH, or a bare folder/.csv/.jsonl path):
  lrs2:PATH    LRS2: main/<speaker_id>/<clip>.mp4 and the test.txt list (lrs2:PATH/val.txt: another list)
  hdtf:PATH    HDTF: <name>.mp4 clips (RD_/WDA_/WRA_...) in PATH or its sub-folders
  folder:PATH  videos in PATH, a same-name audio file is the clip's speech
  csv:FILE, jsonl:FILE  manifests with video, audio (optional), id (optional)

A repeated run into the same --out skips the clips already done. A clip's own problem (a missing or
unreadable file, no face, an engine error) is a failed row with its reason, and the run goes on.
Exit status: 0 when every clip was scored, 3 when some clips failed (their errors are in
results.csv), 2 when the run could not start (a bad dataset or option).
"""


def add_eval_parser(subparsers: argparse._SubParsersAction,
                    parents: Sequence[argparse.ArgumentParser] = ()) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand to ``subparsers`` (``parents``: shared flags such as --verbose/--quiet)."""
    p = subparsers.add_parser(
        "eval", parents=list(parents), help="evaluate an engine on a dataset: render, score, report",
        description="Render every clip of --dataset with --engine, score it (sharpness, audio-visual sync, mouth "
                    "motion, landmark jitter; for the paired protocol also landmark distance and PSNR/SSIM against "
                    "the source; LSE-D/LSE-C and FID/KID when their weights are found) and write results.csv, "
                    "summary.json, report.md and plots to --out.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, metavar="[LAYOUT:]PATH",
                   help="lrs2:PATH, hdtf:PATH, folder:PATH, csv:FILE or jsonl:FILE (see below); a bare path is a "
                        "folder of videos (an audio file with the same name is that clip's speech, else its own "
                        "sound track) or a .csv/.jsonl manifest with columns video, audio (optional), id (optional)")
    p.add_argument("--subset", type=flags.positive, metavar="N",
                   help="evaluate N clips of the dataset only, drawn with --seed (for quick runs)")
    flags.add_engine(p, "lip-sync engine to evaluate")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (created): results.csv, summary.json, report.md, plots/, videos/; "
                        "a repeated run skips the clips already done")
    p.add_argument("--protocol", choices=["paired", "unpaired"], default="paired",
                   help="paired: each video driven by its own speech (reconstruction; landmark distance and "
                        "PSNR/SSIM are computed); unpaired: each video driven by another clip's speech, chosen "
                        "by a seeded derangement (default paired)")
    p.add_argument("--workers", type=flags.positive, default=1, metavar="N",
                   help="clips processed at once on this machine (separate processes; default 1); with "
                        "--ray local, the CPUs given to the local Ray runtime")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="spread clips over Ray (needs pip install 'retalk[ray]'): 'local' starts Ray on this "
                        "machine, 'auto' or HOST:PORT / ray://HOST:PORT joins a running cluster (the dataset and "
                        "--out must be on storage every node sees)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the unpaired pairing and of the --subset draw (default 0); the same seed gives "
                        "the same clips and pairs")
    p.add_argument("--checkpoints", metavar="DIR",
                   help="folder with syncnet_v2.model (LSE), pt_inception-2015-12-05-6726825d.pth (FID/KID) and "
                        "the engine's weights (default ./checkpoints or $RETALK_CHECKPOINTS); missing files make "
                        "those metrics 'unavailable', the rest still run")
    p.add_argument("--metrics", default="default", metavar="GROUPS",
                   help="comma-separated metric groups: sharpness, sync, mouth, jitter, reference, lse, fid, "
                        "or default (all; the default)")
    flags.add_flag(p, "--frame-step", "--frame_step", type=flags.positive, default=1, metavar="N",
                   help="compute the per-frame picture metrics (CPBD, PSNR, SSIM, FID/KID) on every N-th frame "
                        "only, for speed on long or large videos (default 1: every frame)")
    flags.add_device(p, "the engine (the metric networks run on the CPU)")
    return p


def _show(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "–" if v is None else str(v)


def run_eval(args: argparse.Namespace) -> int:
    """Run ``retalk eval`` with parsed ``args``; print a short summary; return the exit status.

    Errors about the dataset or options propagate as :class:`retalk.errors.RetalkError` (the
    caller prints them as one line).
    """
    from retalk.evaluate.runner import evaluate

    quiet = getattr(args, "quiet", False)
    summary = evaluate(args.dataset, args.engine, args.out, protocol=args.protocol, workers=args.workers,
                       ray=args.ray, seed=args.seed, checkpoints=args.checkpoints, metrics=args.metrics,
                       progress=not quiet and sys.stderr.isatty(), frame_step=args.frame_step,
                       device=getattr(args, "device", None), subset=getattr(args, "subset", None))
    print(f"{summary.engine} ({summary.protocol}): {summary.n_ok}/{summary.n_clips} clips scored"
          f"{f', {summary.n_resumed} reused' if summary.n_resumed else ''} in {summary.elapsed_s:.1f} s")
    for name, value in summary.means.items():
        if value is not None:
            print(f"  {name:18s} {_show(value)}")
    for name, value in summary.set_metrics.items():
        print(f"  {name:18s} {_show(value)}")
    for group in summary.unavailable:  # the reason was logged once when the run started
        print(f"  {group} unavailable (why: the warning above, and summary.json)")
    print(f"results: {summary.results_csv}\nreport:  {summary.report_md}")
    if summary.n_error:
        print(f"retalk: {summary.n_error} of {summary.n_clips} clip(s) failed; see {summary.results_csv}",
              file=sys.stderr)
        return EXIT_FAILED_CLIPS
    return EXIT_OK
