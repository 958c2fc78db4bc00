"""Keras callbacks that measure the late phase of training at scheduled steps.

Monitors (``GrokkingMonitor``, ``CollapseMonitor``, ``InformationPlaneMonitor``,
``ComplexityMonitor``, ``FourierMonitor``) share one measurement pass per measured
step; ``ForecastMonitor`` reads their rows and logs a forecast of the
generalization step; the others record a run (``MetricsRecorder``,
``TrainingCheckpoint``) and show its progress (``StepProgress``).
"""

from keras_grok.callbacks.collapse_monitor import CollapseMonitor
from keras_grok.callbacks.complexity_monitor import ComplexityMonitor
from keras_grok.callbacks.forecast_monitor import ForecastMonitor
from keras_grok.callbacks.fourier_monitor import FourierMonitor
from keras_grok.callbacks.grokking_monitor import GrokkingMonitor
from keras_grok.callbacks.information_plane_monitor import InformationPlaneMonitor
from keras_grok.callbacks.measurement_coordinator import MeasurementCoordinator
from keras_grok.callbacks.measurement_requests import (
    CollapseStatisticsOf,
    FeaturesOf,
    LossAndAccuracy,
    Outputs,
    PassResults,
)
from keras_grok.callbacks.metrics_recorder import MetricsRecorder
from keras_grok.callbacks.schedule import (
    AdaptiveSchedule,
    Schedule,
    every_schedule,
    geometric_schedule,
    omnigrok_schedule,
    resolve_schedule,
)
from keras_grok.callbacks.scheduled_monitor import ScheduledMonitor
from keras_grok.callbacks.spectral_density_monitor import SpectralDensityMonitor
from keras_grok.callbacks.step_progress import StepProgress
from keras_grok.callbacks.training_checkpoint import TrainingCheckpoint

__all__ = [
    "AdaptiveSchedule",
    "CollapseMonitor",
    "CollapseStatisticsOf",
    "ComplexityMonitor",
    "FeaturesOf",
    "ForecastMonitor",
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
    "SpectralDensityMonitor",
    "StepProgress",
    "TrainingCheckpoint",
    "every_schedule",
    "geometric_schedule",
    "omnigrok_schedule",
    "resolve_schedule",
]
