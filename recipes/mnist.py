"""Grokking on images (paper A's figure): test accuracy rises as RNC1 falls.

Sakamoto & Sato (arXiv 2509.20829), following Omnigrok (Liu et al., 2023): an MLP
784-200-200-10 whose initial parameters are scaled by alpha = 8, trained with the
squared error against one-hot targets summed over the batch (``SumSquaredError``)
and AdamW on the first 1,000 MNIST training images. It fits them early; test
accuracy rises much later, as weight decay shrinks the weights and the features
collapse (RNC1 falls, NC2 moves toward 1). The figure plots train and test accuracy,
RNC1 and NC2 against the step (log axis).

    keras-grok run recipes/mnist.py --set weight_decay=0.01
    keras-grok run recipes/mnist.py --set dataset=digits max_steps=30000 \\
        weight_decay=0.3

MNIST, Fashion-MNIST (``dataset=fashion_mnist``) and CIFAR-10 (``dataset=cifar10``)
must be prepared with tensorflow-datasets beforehand (``data_dir=DIR`` or
``$TFDS_DATA_DIR``; nothing is downloaded). ``dataset=digits`` (scikit-learn's 8x8
digits, 300 training images, needs ``pip install scikit-learn``) runs offline.
``model=cnn`` is the toy CNN (only its dense layers scaled), ``model=transformer``
the 1-layer patch transformer and ``model=resnet18`` the CIFAR-style ResNet-18 (only
their read-out scaled).

``memorized_at`` is the first measured step with train accuracy >= ``threshold``;
``generalized_at`` the first with test accuracy >= ``test_threshold``. Collapse
(``train_rnc1``, ``test_rnc1``, ``*_nc2``, ...) comes from the same forward pass
as the accuracy; ``information=nhsic,kde`` adds the information plane of the
first ``information_size`` test images (``test_nhsic_zx``, ...).
"""

from keras_grok.experiments.image_grokking import (
    IMAGE_CONFIG,
    prepare_image_data,
    run_image_experiment,
    validate_image_config,
)

CONFIG = dict(IMAGE_CONFIG)
validate = validate_image_config
prepare = prepare_image_data
run = run_image_experiment
