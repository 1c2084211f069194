"""Does the dubbed mouth move like the speaker's own? Motion figures of ``retalk sync`` outputs against their sources.

For each clip, dubs it with the given speech (built-in engine, default options)
and prints :func:`retalk.evaluate.mouth_motion.mouth_motion`'s ratios, output over
source on the same frames:

* source spread: the source's own standard deviation of lip opening (inter-ocular units); a speaker
  who barely moves their mouth (under ~0.02) makes every ratio large, since the new speech must move it;
* spread: standard deviation of the lip opening, output over source (issue target 0.6–1.6);
* change: mean frame-to-frame change in a fixed box around the mouth (target ≤ 1: no stutter, no flicker);
* p99: the 99th percentile of that change (single pops);
* aligned: the mean change in a box that follows the head (the mouth alone, head motion left out).

Without ``--clip`` it runs on generated clips: a talking clip (the astronaut photo animated by
``retalk animate`` speaking its own synthesized sentence) dubbed with another synthesized voice and with
vowel-like speech, and the moving photo with vowel-like speech (a still mouth: its spread is printed,
marked ``still``; a source that never moves its mouth makes the ratio large by design). The spread is
printed on every clip. Real footage is what these figures are for: ``--clip VIDEO AUDIO`` (repeatable).
Usage: python benchmarks/sync_motion.py [--clip VIDEO AUDIO]... [--seconds 6] [--expression-scale 1]
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "3")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _generated(tmp: Path, seconds: float) -> list[tuple[Path, Path]]:
    """Generated (video, speech) pairs: the talking clip with a synthesized sentence and with vowel-like speech,
    and the moving photo with vowel-like speech."""
    import cv2

    from retalk.media import write_wav
    from retalk.portrait.animate import AnimateOptions, animate
    from retalk.samples import astronaut, write_face_clip, write_vowel_speech
    from retalk.speech.tts import synthesize

    photo = tmp / "photo.png"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut(512), cv2.COLOR_RGB2BGR))
    own = synthesize("Well, I think a long walk by the water is the best part of my day; you see the boats go by.")
    write_wav(tmp / "own.wav", own.samples, own.sample_rate)
    talking = tmp / "talking.mp4"
    animate(photo, tmp / "own.wav", talking,
            AnimateOptions(size=512, phones=own.phones, recognize=False, progress=False))
    other = synthesize("So we drove all the way down to the coast, and my brother kept talking about his car.",
                       voice="en-us+f2")
    write_wav(tmp / "synthesized.wav", other.samples, other.sample_rate)
    vowels = write_vowel_speech(tmp / "vowels.wav", seconds)
    face = write_face_clip(tmp / "face.mp4", seconds=seconds, fps=25, width=512, height=512)
    return [(talking, tmp / "synthesized.wav"), (talking, vowels), (face, vowels)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", nargs=2, action="append", metavar=("VIDEO", "AUDIO"), default=[],
                    help="dub this clip with this speech and measure it (repeatable)")
    ap.add_argument("--seconds", type=float, default=6.0, help="length of the generated clip")
    ap.add_argument("--expression-scale", type=float, default=1.0, help="the dubs' --expression-scale (0-3)")
    args = ap.parse_args()

    from retalk.evaluate.mouth_motion import mouth_motion
    from retalk.pipeline import SyncOptions, sync

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        clips = [(Path(v), Path(a)) for v, a in args.clip]
        if not clips:
            clips = _generated(tmp, args.seconds)
        print(f"{'clip':24s} {'frames':>6s} {'source spread':>13s} {'spread':>12s} {'change':>7s} {'p99':>6s} {'aligned':>8s}")
        for n, (face, audio) in enumerate(clips):
            out = tmp / f"out_{n}.mp4"
            sync(face, audio, out, SyncOptions(progress=False, expression_scale=args.expression_scale))
            try:
                r = mouth_motion(face, out)
            except ValueError as exc:  # a photo, or no face in the source
                print(f"{face.stem[:24]:24s} {exc}")
                continue
            still = math.isnan(r.spread_ratio) or r.source_spread < 0.01  # a photo, or a speaker who never talks
            spread = f"{r.spread_ratio:.2f}" + (" still" if still else "")
            name = f"{face.stem}+{audio.stem}"
            print(f"{name[:24]:24s} {r.frames:6d} {r.source_spread:13.3f} {spread:>12s} {r.change_ratio:7.2f} {r.change_p99_ratio:6.2f} "
                  f"{r.aligned_change_ratio:8.2f}")


if __name__ == "__main__":
    main()
