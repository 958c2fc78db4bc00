"""Description length: the bits of a two-part code, model plus data given model.

Minimum description length (Rissanen, 1978) counts a model's bits plus the bits of
the data encoded with it. Paper B (DeMoss et al., *The Complexity Dynamics of
Grokking*, arXiv 2412.09810) takes the model part from the compressed size of the
coarse-grained weights (``keras_grok.measures.complexity``) and relates it to the
data part ``sum_i -log2 p(y_i | x_i)``.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from keras_grok.utils.argument_validation import (
    validate_bool_arg,
    validate_float_arg,
    validate_int_arg,
)
from keras_grok.utils.labelled_data import validate_class_labels, validate_labelled_pair


def data_bits(
    model: keras.Model, data: tuple, from_logits: bool = True, batch_size: int = 4096
) -> float:
    """``sum_i -log2 p(y_i | x_i)`` over ``data``: the bits to send the labels.

    The data part of a two-part code: given the model, each label costs
    ``-log2 p(y | x)`` bits with an arithmetic coder.

    Args:
        model: a classifier.
        data: ``(x, y)`` arrays: integer labels or one-hot rows.
        from_logits: the model outputs logits (a log-softmax is applied), else
            probabilities. Defaults to `True`.
        batch_size: examples per inference call. Defaults to `4096`.
    """
    batch_size = validate_int_arg(batch_size, "batch_size")
    from_logits = validate_bool_arg(from_logits, "from_logits")
    pair = validate_labelled_pair(data, "data")  # one-hot rows become indices
    x, y = pair.x, pair.labels
    total = 0.0
    for i in range(0, len(x), batch_size):
        out = np.asarray(
            model.predict_on_batch(x[i : i + batch_size]), dtype=np.float64
        )
        rows = out.reshape(len(out), -1)
        if from_logits:
            shifted = rows - rows.max(-1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        else:
            log_p = np.log(np.clip(rows, 1e-300, None))
        validate_class_labels(y[i : i + batch_size], "data labels", rows.shape[-1])
        total -= log_p[np.arange(len(rows)), y[i : i + batch_size]].sum()
    return float(total / math.log(2))


def description_length(complexity_bits: float, label_bits: float) -> float:
    """Total description length in bits: model bits plus data-given-model bits.

    The two-part code of minimum description length (Rissanen, 1978; paper B,
    section on compression): ``L = complexity_bits + data_bits``.
    """
    complexity_bits = validate_float_arg(complexity_bits, "complexity_bits")
    return complexity_bits + validate_float_arg(label_bits, "label_bits")
