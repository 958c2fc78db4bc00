"""Keras callbacks that measure the late phase of training at scheduled steps.

Monitors (``GrokkingMonitor``, ``CollapseMonitor``, ``InformationPlaneMonitor``,
``ComplexityMonitor``, ``FourierMonitor``) share one measurement pass per measured
step; the others record a run (``MetricsRecorder``, ``TrainingCheckpoint``) and
show its progress (``StepProgress``).
"""

from keras_grok.callbacks.checkpoint import TrainingCheckpoint
from keras_grok.callbacks.collapse import CollapseMonitor
from keras_grok.callbacks.complexity import ComplexityMonitor
from keras_grok.callbacks.fourier import FourierMonitor
from keras_grok.callbacks.grokking import GrokkingMonitor
from keras_grok.callbacks.information import InformationPlaneMonitor
from keras_grok.callbacks.measurement_coordinator import MeasurementCoordinator
from keras_grok.callbacks.measurement_requests import (
    CollapseStatisticsOf,
    FeaturesOf,
    LossAndAccuracy,
    Outputs,
    PassResults,
)
from keras_grok.callbacks.metrics_recorder import MetricsRecorder
from keras_grok.callbacks.monitor import ScheduledMonitor
from keras_grok.callbacks.progress import StepProgress
from keras_grok.callbacks.schedule import (
    AdaptiveSchedule,
    Schedule,
    every_schedule,
    geometric_schedule,
    omnigrok_schedule,
    resolve_schedule,
)

__all__ = [
    "AdaptiveSchedule",
    "CollapseMonitor",
    "CollapseStatisticsOf",
    "ComplexityMonitor",
    "FeaturesOf",
    "FourierMonitor",
    "GrokkingMonitor",
    "InformationPlaneMonitor",
    "LossAndAccuracy",
    "MeasurementCoordinator",
    "MetricsRecorder",
    "Outputs",
    "PassResults",
    "Schedule",
    "ScheduledMonitor",
    "StepProgress",
    "TrainingCheckpoint",
    "every_schedule",
    "geometric_schedule",
    "omnigrok_schedule",
    "resolve_schedule",
]
