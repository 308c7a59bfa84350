"""Plays: YAML → validated model, the condition grammar, its type checker and two evaluators."""

from .compile import CompiledPlay, FeatureNode, compile_play, validate_play, validate_play_text
from .loader import load_play
from .model import Play
from .resolve import find_play, play_files

__all__ = [
    "CompiledPlay",
    "FeatureNode",
    "Play",
    "compile_play",
    "find_play",
    "load_play",
    "play_files",
    "validate_play",
    "validate_play_text",
]
