"""The web page (Gradio Blocks): dubbing, portrait and evaluation tabs over the same job queue as the API.

Every button submits a job through :class:`retalk.serve.api.Submitter` (same checks, same bounded
queue, so one GPU job at a time holds for page and API alike), then follows its progress until it ends.
Imported only by :func:`retalk.serve.app.build_app` (Gradio is heavy).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gradio as gr

from retalk.serve.api import Submitter, engine_report
from retalk.serve.examples import ExampleMaker
from retalk.serve.jobs import DONE
from retalk.serve.uploads import RequestError

POLL_S = 0.3
NONE = "none"


def engines_markdown(submitter: Submitter, folder: str | None = None) -> str:
    """A table of engines/enhancers, with where to get the checkpoints of those that are missing.

    ``folder``: a checkpoint folder on the server (the server's own, or one inside the allowed roots).
    """
    try:
        chosen = submitter.checkpoints(folder or None)
    except RequestError as exc:
        raise gr.Error(str(exc)) from None
    rows = ["| engine / enhancer | ready | note |", "|---|---|---|"]
    for name, info in engine_report(Path(chosen) if chosen else None).items():
        note = str(info["note"]).replace("|", "\\|")
        rows.append(f"| {name} | {'yes' if info['ready'] else '**no**'} | {note} |")
    return "\n".join(rows)


def _follow(submitter: Submitter, job_id: str, progress: gr.Progress) -> Path:
    """Wait for a job, showing its progress; the output folder when it is done, else gr.Error."""
    queue = submitter.queue
    while True:
        status = queue.get(job_id)
        if status is None:
            raise gr.Error("the job disappeared (expired)")
        if status.state == "queued":
            progress(0.0, desc="waiting in the queue")
        elif status.state == "running":
            progress(status.progress, desc=status.stage or "working")
        else:
            break
        time.sleep(POLL_S)
    if status.state != DONE:
        raise gr.Error(f"job {status.state}: {status.error}")
    out = queue.output_dir(job_id)
    if out is None:
        raise gr.Error("the job's output has expired")
    return out


def _open(path: str | None) -> Any:
    return open(path, "rb") if path else None


def _submit(submitter: Submitter, kind: str, files: dict[str, str | None], **options: Any) -> str:
    handles = {role: _open(p) for role, p in files.items()}
    try:
        return submitter.submit(kind, handles, {}, **options)
    except RequestError as exc:
        raise gr.Error(str(exc)) from None
    finally:
        for h in handles.values():
            if h is not None:
                h.close()


def _choice(value: str | None) -> str | None:
    return None if not value or value == NONE else value


def build_ui(submitter: Submitter, examples: ExampleMaker | None) -> gr.Blocks:
    """The page. ``examples``: the example inputs' maker (None: no example buttons)."""
    from retalk.serve.tasks import ENGINE_NAMES, ENHANCERS

    engines = list(ENGINE_NAMES)
    enhancers = [NONE, *ENHANCERS]
    default_ck = str(submitter.config.checkpoints or "")

    def dub(face: str | None, audio: str | None, text: str, engine: str, enhancer: str, ck: str, scale: float,
            progress: gr.Progress = gr.Progress()) -> tuple[str, str]:
        if not face:
            raise gr.Error("upload a face video first")
        use_text = bool(text and text.strip()) and not audio
        job_id = _submit(submitter, "dub", {"face": face, "audio": None if use_text else audio},
                         text=text if use_text else None, engine=engine, enhancer=_choice(enhancer),
                         checkpoints=ck or None, expression_scale=float(scale))
        out = _follow(submitter, job_id, progress)
        info = submitter.queue.get(job_id).result or {}  # type: ignore[union-attr]
        return str(out / "result.mp4"), (f"job {job_id}: {info.get('frames')} frames, "
                                          f"{info.get('duration', 0):.2f} s")

    def portrait(image: str | None, audio: str | None, text: str, enhancer: str, ck: str, scale: float,
                 size: float, preprocess: str, still: bool, pose_style: float, blink_rate: float,
                 progress: gr.Progress = gr.Progress()) -> tuple[str, str]:
        if not image:
            raise gr.Error("upload a photo first")
        use_text = bool(text and text.strip()) and not audio
        job_id = _submit(submitter, "portrait", {"image": image, "audio": None if use_text else audio},
                         text=text if use_text else None, enhancer=_choice(enhancer), checkpoints=ck or None,
                         expression_scale=float(scale),
                         portrait=(("size", int(size)), ("preprocess", preprocess), ("still", bool(still)),
                                   ("pose_style", int(pose_style)), ("blink_rate", float(blink_rate))))
        out = _follow(submitter, job_id, progress)
        info = submitter.queue.get(job_id).result or {}  # type: ignore[union-attr]
        return str(out / "result.mp4"), f"job {job_id}: {info.get('frames')} frames, {info.get('duration', 0):.2f} s"

    def evaluate(clips: list[str] | None, folder: str, engine: str, protocol: str, ck: str,
                 progress: gr.Progress = gr.Progress()) -> tuple[str, list[str], str]:
        handles = [open(c, "rb") for c in (clips or [])]
        try:
            job_id = submitter.submit_clips(handles, folder or None, engine=engine, protocol=protocol,
                                            checkpoints=ck or None)
        except RequestError as exc:
            raise gr.Error(str(exc)) from None
        finally:
            for h in handles:
                h.close()
        out = _follow(submitter, job_id, progress)
        report = out / "report"
        text = (report / "report.md").read_text(encoding="utf-8") if (report / "report.md").is_file() else ""
        # the plots are shown by the gallery below; the report's relative image links would not resolve here
        text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("!["))
        plots = sorted(str(p) for p in (report / "plots").glob("*.png"))
        return text, plots, str(out / "report.zip")

    def example_inputs(kind: str) -> tuple[Any, ...]:
        ex = examples.get() if examples else None
        if ex is None:
            raise gr.Error("the example inputs could not be written; see the server log")
        return (str(ex.face if kind == "dub" else ex.photo), str(ex.speech), "")

    ttl = int(submitter.config.result_ttl_s)
    with gr.Blocks(title="retalk", analytics_enabled=False, delete_cache=(min(ttl, 600), ttl)) as page:
        gr.Markdown("# retalk\nDub a video with new speech, animate a photo, evaluate an engine. "
                    "Jobs run on this server; the same jobs are available over HTTP (`/api`, "
                    "schema at `/api/openapi.json`).")
        with gr.Accordion("Engines, enhancers and checkpoints", open=False):
            engines_md = gr.Markdown("checking...")
            ck_box = gr.Textbox(label="checkpoint folder (on the server)", value=default_ck,
                                placeholder="default: $RETALK_CHECKPOINTS or ./checkpoints")
            gr.Button("re-check", size="sm").click(lambda ck: engines_markdown(submitter, ck), ck_box, engines_md)
        with gr.Tab("Dubbing"):
            with gr.Row():
                with gr.Column():
                    d_face = gr.Video(label="face video", sources=["upload"], elem_id="dub-face")
                    d_audio = gr.Audio(label="speech", type="filepath", sources=["upload"], elem_id="dub-audio")
                    d_text = gr.Textbox(label="...or text to speak (used when no speech is given)", lines=2)
                    with gr.Row():
                        d_engine = gr.Dropdown(engines, value="builtin", label="engine")
                        d_enh = gr.Dropdown(enhancers, value=NONE, label="enhancer")
                    d_scale = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="expression scale")
                    with gr.Row():
                        d_ex = gr.Button("use example inputs", size="sm", visible=examples is not None)
                        d_run = gr.Button("Dub", variant="primary", elem_id="dub-run")
                with gr.Column():
                    d_out = gr.Video(label="result", elem_id="dub-result", interactive=False)
                    d_info = gr.Markdown(elem_id="dub-info")
            d_ex.click(lambda: example_inputs("dub"), None, [d_face, d_audio, d_text])
            d_run.click(dub, [d_face, d_audio, d_text, d_engine, d_enh, ck_box, d_scale], [d_out, d_info],
                        concurrency_limit=None)
        with gr.Tab("Portrait"):
            with gr.Row():
                with gr.Column():
                    p_img = gr.Image(label="photo", type="filepath", sources=["upload"])
                    p_audio = gr.Audio(label="speech", type="filepath", sources=["upload"])
                    p_text = gr.Textbox(label="...or text to speak (used when no speech is given)", lines=2)
                    with gr.Row():
                        p_pre = gr.Dropdown(["crop", "resize", "full"], value="crop", label="preprocess")
                        p_size = gr.Slider(128, 1024, value=512, step=32, label="size (px)")
                    with gr.Row():
                        p_still = gr.Checkbox(label="still (no head motion)")
                        p_pose = gr.Slider(0, 5, value=0, step=1, label="pose style")
                        p_blink = gr.Slider(0, 40, value=17, step=1, label="blinks per minute")
                    with gr.Row():
                        p_scale = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="expression scale")
                        p_enh = gr.Dropdown(enhancers, value=NONE, label="enhancer")
                    with gr.Row():
                        p_ex = gr.Button("use example inputs", size="sm", visible=examples is not None,
                                         elem_id="portrait-examples")
                        p_run = gr.Button("Animate", variant="primary", elem_id="portrait-run")
                with gr.Column():
                    p_out = gr.Video(label="result", interactive=False, elem_id="portrait-result")
                    p_info = gr.Markdown()
            p_ex.click(lambda: example_inputs("portrait"), None, [p_img, p_audio, p_text])
            p_run.click(portrait, [p_img, p_audio, p_text, p_enh, ck_box, p_scale, p_size, p_pre, p_still, p_pose,
                                   p_blink], [p_out, p_info], concurrency_limit=None)
        with gr.Tab("Evaluation"):
            with gr.Row():
                with gr.Column():
                    e_clips = gr.File(label="talking clips (videos with their own speech)", file_count="multiple",
                                      type="filepath", elem_id="eval-clips")
                    e_folder = gr.Textbox(label="...or a dataset folder on the server (needs --allow-path)")
                    with gr.Row():
                        e_engine = gr.Dropdown(engines, value="builtin", label="engine")
                        e_proto = gr.Dropdown(["paired", "unpaired"], value="paired", label="protocol")
                    e_run = gr.Button("Evaluate", variant="primary", elem_id="eval-run")
                with gr.Column():
                    e_zip = gr.File(label="report (zip)", interactive=False)
            e_report = gr.Markdown(elem_id="eval-report")
            e_plots = gr.Gallery(label="plots", columns=2, elem_id="eval-plots")
            e_run.click(evaluate, [e_clips, e_folder, e_engine, e_proto, ck_box], [e_report, e_plots, e_zip],
                        concurrency_limit=None)
        page.load(lambda: engines_markdown(submitter), None, engines_md)
    return page
