"""One recorded run: ``train_and_record`` (training with monitors, metrics,
checkpoints, figure and summary), ``run_folder`` (the one owner of a run's files),
``figures`` (drawing a run's metrics) and ``distribution`` (one run on several
devices).

Importing ``keras_grok.runs.run_folder`` imports no Keras (the command line reads
run folders before it chooses a backend).
"""
