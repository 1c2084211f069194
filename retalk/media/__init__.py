"""Media input/output: PyAV decoding and encoding, streaming, atomic writes."""
from retalk.media.audio import ANALYSIS_RATE, Audio, check_not_silent, load_audio, write_wav
from retalk.media.probe import check_file, is_image, open_container
from retalk.media.sink import VideoSink
from retalk.media.video import VideoInfo, iter_frames, probe_video, read_image

__all__ = [
    "ANALYSIS_RATE", "Audio", "VideoInfo", "VideoSink", "check_file", "check_not_silent", "is_image",
    "iter_frames", "load_audio", "open_container", "probe_video", "read_image", "write_wav",
]
