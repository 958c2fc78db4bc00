"""Keras callbacks that measure the late phase of training at scheduled steps."""

from keras_grok.callbacks.checkpoint import CheckpointState, TrainingCheckpoint
from keras_grok.callbacks.collapse import CollapseMonitor
from keras_grok.callbacks.complexity import ComplexityMonitor
from keras_grok.callbacks.grokking import GrokkingMonitor
from keras_grok.callbacks.information import InformationPlaneMonitor
from keras_grok.callbacks.monitor import ScheduledMonitor
from keras_grok.callbacks.progress import StepProgress
from keras_grok.callbacks.results import MetricsRecorder
from keras_grok.callbacks.schedule import (
    Schedule,
    geometric_schedule,
    omnigrok_schedule,
    resolve_schedule,
)

__all__ = [
    "CheckpointState",
    "CollapseMonitor",
    "ComplexityMonitor",
    "GrokkingMonitor",
    "InformationPlaneMonitor",
    "MetricsRecorder",
    "Schedule",
    "ScheduledMonitor",
    "StepProgress",
    "TrainingCheckpoint",
    "geometric_schedule",
    "omnigrok_schedule",
    "resolve_schedule",
]
