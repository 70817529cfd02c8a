"""The local engine: runs ``video``, ``image`` and ``audio`` tasks on local files with FFmpeg.

Pure Python (no Django). The ffmpeg binary is the configured one, else imageio-ffmpeg's, else the
one on PATH. Inputs are local paths only; the engine never touches the network.

    from tapestry_media.local.engine import run_operation
    result = run_operation("video", "in.mov", "/tmp/out", {"width": 1280, "format": "mp4"})
    result.path  # "/tmp/out/in.mp4"
"""

from .binary import find_ffmpeg
from .commands import DEFAULT_PRESET, build_command
from .errors import (
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    InputError,
    InputRefused,
    UnsupportedOperation,
)
from .operations import EngineResult, run_operation
from .options import SUPPORTED_KINDS, validate_options
from .probe import MediaInfo, probe

__all__ = [
    "DEFAULT_PRESET",
    "SUPPORTED_KINDS",
    "EngineError",
    "EngineResult",
    "EngineTimeout",
    "EngineUnavailable",
    "InputError",
    "InputRefused",
    "MediaInfo",
    "UnsupportedOperation",
    "build_command",
    "find_ffmpeg",
    "probe",
    "run_operation",
    "validate_options",
]
