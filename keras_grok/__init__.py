"""keras-grok: watch grokking, neural collapse and complexity dynamics in Keras 3.

Importing this package does not import Keras, so the command line can choose the
backend first. Import the parts you need: ``from keras_grok import callbacks``.
"""

__version__ = "0.1.0"
